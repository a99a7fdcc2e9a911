// The admin pages, live: while the page is shown, listen to /admin/events and, when something happened (a job
// started or ended on any node, an import moved, or the stream says to resync), fetch this same page again and
// swap in its <main> — the server renders the current state, as it does without this script. A hidden tab stops
// listening; shown again, it catches up at once. A dropped stream reconnects (EventSource does) and catches up.
(function () {
  "use strict";
  var main = document.getElementById("main");
  if (!main || !window.EventSource || !window.fetch) return;
  var source = null;
  var pending = null;

  function refresh() {
    pending = null;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("main");
        // A form being filled in is not swapped out from under the operator.
        var active = document.activeElement;
        if (!fresh || (active && main.contains(active) && /INPUT|SELECT|TEXTAREA/.test(active.tagName))) return;
        main.innerHTML = fresh.innerHTML;
        main.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () {});
  }

  // Bursts of events make one fetch, within a quarter of a second of the first.
  function soon() {
    if (pending === null) pending = window.setTimeout(refresh, 250);
  }

  function open() {
    if (source) return;
    source = new EventSource("/admin/events");
    source.onmessage = function (message) {
      var event;
      try { event = JSON.parse(message.data); } catch (e) { return; }
      if (event.type === "open") {
        // (Re)connected: whatever happened while we were away is on the page after one fetch.
        if (main.hasAttribute("data-live")) soon();
        main.setAttribute("data-live", "true");
      } else {
        soon();
      }
    };
  }

  function close() {
    if (source) { source.close(); source = null; }
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { close(); } else { open(); soon(); }
  });
  if (!document.hidden) open();
})();
