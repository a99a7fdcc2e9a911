// Keeps the booking form's non-card fields in the server-side session as the traveller types, so a reload,
// a restart or another node loses nothing. Card fields are never sent here. Without JavaScript the form still
// works; the fields are then kept when it is submitted.
(function () {
  var form = document.getElementById("booking-form");
  if (!form || !window.fetch) return;
  function save() {
    var body = new URLSearchParams();
    body.append("csrf", form.elements["csrf"].value);
    body.append("idempotency_key", form.elements["idempotency_key"].value);
    form.querySelectorAll("[data-draft]").forEach(function (input) { body.append(input.name, input.value); });
    fetch(form.action + "/draft", { method: "POST", body: body, credentials: "same-origin" })
      .then(function (r) { form.dataset.draftSaved = r.ok ? "yes" : "failed"; })
      .catch(function () { form.dataset.draftSaved = "failed"; });
  }
  form.querySelectorAll("[data-draft]").forEach(function (input) {
    input.addEventListener("change", save);
  });
})();
