//! The website in-process, on both engines: every page's happy and error path, sessions that outlive a node,
//! the form's idempotency key and the CSRF check.

use axum::http::StatusCode;
use skybook_storage::Engine;
use skybook_testkit::backend_tests;
use skybook_testkit::fixtures::{CARD_DECLINED, CARD_OK};

use crate::harness::{TestApp, ADMIN_TOKEN};
use crate::visitor::{Page, Visitor};

/// Values that change per run, masked in page snapshots.
macro_rules! assert_page_snapshot {
    ($name:expr, $html:expr) => {
        insta::with_settings!({filters => vec![
            (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "[uuid]"),
            (r"site-[0-9a-f]{32,48}", "[form-key]"),
            (r"[0-9a-f]{96}", "[csrf]"),
            (r"[0-9a-f]{64}", "[csrf]"),
            (r"\w{3} \d{1,2} \w{3} \d{4}, \d\d:\d\d UTC", "[departure]"),
            (r"\d{4}-\d\d-\d\d", "[date]"),
            (r#"id="reference">[A-Z0-9]{6}<"#, r#"id="reference">[reference]<"#),
        ]}, {
            insta::assert_snapshot!($name, $html);
        })
    };
}

fn tomorrow() -> String {
    (chrono::Utc::now().date_naive() + chrono::Days::new(1)).to_string()
}

/// The booking form's fields for one traveller, with the form's hidden fields from `form`.
pub(crate) fn booking_fields(form: &Page, given: &str, card: &str) -> Vec<(&'static str, String)> {
    vec![
        ("csrf", form.csrf()),
        ("idempotency_key", form.input("idempotency_key").unwrap()),
        ("passengers[0].given_name", given.to_owned()),
        ("passengers[0].family_name", "Lee".to_owned()),
        (
            "contact_email",
            format!("{}@example.com", given.to_lowercase()),
        ),
        ("card.number", card.to_owned()),
        ("card.exp_month", "12".to_owned()),
        ("card.exp_year", "2031".to_owned()),
        ("card.cvc", "123".to_owned()),
    ]
}

pub(crate) fn borrowed<'a>(fields: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    fields.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Opens the booking form and submits it for one traveller paying with `card`; returns the form and the page
/// the submission got.
async fn submit_booking(
    app: &TestApp,
    visitor: &mut Visitor,
    given: &str,
    card: &str,
) -> (Page, Page) {
    let path = format!("/book/{}", app.flight.id);
    let form = visitor.get(&path).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.html);
    let fields = booking_fields(&form, given, card);
    let posted = visitor.post(&path, &borrowed(&fields)).await;
    (form, posted)
}

/// Opens the form and books one traveller; returns the confirmation page's reference.
async fn book_through_site(app: &TestApp, visitor: &mut Visitor, given: &str) -> String {
    let (_, posted) = submit_booking(app, visitor, given, CARD_OK).await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER, "{}", posted.html);
    let page = visitor.follow(&posted).await;
    assert_eq!(page.status, StatusCode::OK);
    page.text_of_id("reference")
        .expect("the page shows the reference")
}

async fn search_shows_results_and_is_remembered_across_nodes(engine: Engine) {
    let app = TestApp::start(engine, "site_search", 3).await;
    let mut visitor = Visitor::new(app.router.clone());
    let home = visitor.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.html.contains("Where are you flying?"));

    let date = tomorrow();
    let results = visitor
        .get(&format!(
            "/?origin=dub&destination=LHR&date={date}&passengers=2"
        ))
        .await;
    assert_eq!(results.status, StatusCode::OK, "{}", results.html);
    assert!(
        results.html.contains("Only 3 seats left"),
        "few seats are flagged"
    );
    assert!(results
        .html
        .contains(&format!("/book/{}?passengers=2", app.flight.id)));
    assert_page_snapshot!("site_search_results", results.main());

    // The same cookie on another node (or after a restart): the search is prefilled from the database.
    visitor.switch_to(app.another_node());
    let again = visitor.get("/").await;
    assert_eq!(again.input("origin").as_deref(), Some("DUB"));
    assert_eq!(again.input("destination").as_deref(), Some("LHR"));
    assert_eq!(again.input("date"), Some(date));
    assert!(again.html.contains(r#"<option value="2" selected>"#));
}

async fn search_errors_are_all_listed(engine: Engine) {
    let app = TestApp::start(engine, "site_search_errors", 3).await;
    let mut visitor = Visitor::new(app.router.clone());
    let page = visitor.get("/?origin=D1&destination=&date=soon").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    for anchor in ["#f-origin", "#f-destination", "#f-date"] {
        assert!(
            page.html.contains(&format!("href=\"{anchor}\"")),
            "{anchor} linked from the summary"
        );
    }
    assert!(page.html.contains("There are 3 problems"));
}

async fn a_booking_goes_from_form_to_confirmation(engine: Engine) {
    let app = TestApp::start(engine, "site_book", 5).await;
    let mut visitor = Visitor::new(app.router.clone());
    let form = visitor.get(&format!("/book/{}", app.flight.id)).await;
    assert_page_snapshot!("site_booking_form", form.main());
    let reference = book_through_site(&app, &mut visitor, "Ann").await;
    assert_eq!(reference.len(), 6);
    let page = visitor.get(&format!("/bookings/{reference}")).await;
    assert!(page.html.contains("Booking confirmed"));
    assert!(page.html.contains("ending 4242"));
    assert!(
        !page.html.contains(CARD_OK),
        "the card number is never shown"
    );
    assert_page_snapshot!("site_confirmation", page.main());
    assert_eq!(app.charges().await, 1);
    assert_eq!(app.seats_left().await, 4);
}

async fn invalid_form_lists_every_problem_and_clears_the_card(engine: Engine) {
    let app = TestApp::start(engine, "site_invalid", 5).await;
    let mut visitor = Visitor::new(app.router.clone());
    let form = visitor.get(&format!("/book/{}", app.flight.id)).await;
    let bad_card = "4242424242424241";
    let fields = [
        ("csrf", form.csrf()),
        ("idempotency_key", form.input("idempotency_key").unwrap()),
        ("passengers[0].given_name", String::new()),
        ("passengers[0].family_name", "O'Brien".into()),
        ("contact_email", "not-an-email".into()),
        ("card.number", bad_card.into()),
        ("card.exp_month", "13".into()),
        ("card.exp_year", "2031".into()),
        ("card.cvc", "1".into()),
    ];
    let page = visitor
        .post(&format!("/book/{}", app.flight.id), &borrowed(&fields))
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    for label in [
        "Traveller 1 given name",
        "Email",
        "Card number",
        "Expiry month",
        "Security code",
    ] {
        assert!(
            page.html.contains(&format!("{label}: ")),
            "{label} listed in the summary"
        );
    }
    assert!(
        !page.html.contains(bad_card),
        "card fields are never echoed back"
    );
    assert_eq!(
        page.input("card.number"),
        None,
        "the card inputs have no value"
    );
    assert_eq!(
        page.input("passengers[0].family_name").as_deref(),
        Some("O'Brien"),
        "non-card fields are kept"
    );
    assert_eq!(
        page.input("idempotency_key"),
        form.input("idempotency_key"),
        "an unused key is kept"
    );
    assert_page_snapshot!("site_booking_form_invalid", page.main());
    assert_eq!(app.charges().await, 0);
}

async fn a_double_submit_makes_one_booking(engine: Engine) {
    let app = TestApp::start(engine, "site_double", 5).await;
    let mut visitor = Visitor::new(app.router.clone());
    let form = visitor.get(&format!("/book/{}", app.flight.id)).await;
    let fields = booking_fields(&form, "Bo", CARD_OK);
    let path = format!("/book/{}", app.flight.id);
    let cookie = visitor.cookie.clone();
    // Two clicks: the same form posted twice at once from the same browser.
    let mut second = Visitor::new(app.router.clone());
    second.cookie = cookie;
    second.csrf_cookie = visitor.csrf_cookie.clone();
    let fields_a = borrowed(&fields);
    let (a, b) = tokio::join!(
        visitor.post(&path, &fields_a),
        second.post(&path, &fields_a)
    );
    let mut references = Vec::new();
    for (who, page) in [(&mut visitor, a), (&mut second, b)] {
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
        // The click that found the other one paying goes by the status page, which sends it to the booking.
        let mut landed = who.follow(&page).await;
        if landed.status == StatusCode::SEE_OTHER {
            landed = who.follow(&landed).await;
        }
        references.push(
            landed
                .text_of_id("reference")
                .expect("lands on the booking"),
        );
    }
    assert_eq!(
        references[0], references[1],
        "both clicks land on the same booking"
    );
    // Refreshing the POST (the browser re-sends it) replays the same answer.
    let again = visitor.post(&path, &fields_a).await;
    assert_eq!(again.location, Some(format!("/bookings/{}", references[0])));
    assert_eq!(app.charges().await, 1);
    assert_eq!(app.seats_left().await, 4);
}

async fn a_fresh_browser_is_told_the_booking_exists(engine: Engine) {
    let app = TestApp::start(engine, "site_fresh", 5).await;
    let mut first = Visitor::new(app.router.clone());
    let reference = book_through_site(&app, &mut first, "Cy").await;
    let mut fresh = Visitor::new(app.another_node());
    let form = fresh.get(&format!("/book/{}", app.flight.id)).await;
    let fields = booking_fields(&form, "Cy", CARD_OK);
    let page = fresh
        .post(&format!("/book/{}", app.flight.id), &borrowed(&fields))
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    assert!(page.html.contains("You already have this booking"));
    assert!(page.html.contains("No second charge was made"));
    assert_eq!(page.text_of_id("reference"), Some(reference));
    assert_eq!(app.charges().await, 1);
}

async fn posts_without_the_sessions_csrf_token_or_key_are_refused(engine: Engine) {
    let app = TestApp::start(engine, "site_csrf", 5).await;
    let mut visitor = Visitor::new(app.router.clone());
    let form = visitor.get(&format!("/book/{}", app.flight.id)).await;
    let path = format!("/book/{}", app.flight.id);
    let mut fields = booking_fields(&form, "Di", CARD_OK);

    fields[0].1 = String::new();
    let missing = visitor.post(&path, &borrowed(&fields)).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    assert!(missing.html.contains("This form has expired"));

    fields[0].1 = "0".repeat(64);
    let wrong = visitor.post(&path, &borrowed(&fields)).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);

    // Another browser's token and key are worthless here.
    let mut other = Visitor::new(app.router.clone());
    let their_form = other.get(&path).await;
    let theirs = booking_fields(&their_form, "Di", CARD_OK);
    let stolen = visitor.post(&path, &borrowed(&theirs)).await;
    assert_eq!(stolen.status, StatusCode::FORBIDDEN);
    fields[0].1 = form.csrf();
    fields[1].1 = their_form.input("idempotency_key").unwrap();
    let foreign_key = visitor.post(&path, &borrowed(&fields)).await;
    assert_eq!(foreign_key.status, StatusCode::FORBIDDEN);

    for (path, body) in [
        ("/find", vec![("reference", "ABC234")]),
        ("/admin/login", vec![("token", ADMIN_TOKEN)]),
    ] {
        let refused = visitor.post(path, &body).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(app.charges().await, 0);
    assert_eq!(app.seats_left().await, 5);
}

async fn a_declined_card_gets_the_form_back_with_a_new_key(engine: Engine) {
    let app = TestApp::start(engine, "site_declined", 5).await;
    let mut visitor = Visitor::new(app.router.clone());
    let (form, page) = submit_booking(&app, &mut visitor, "Ed", CARD_DECLINED).await;
    assert_eq!(page.status, StatusCode::PAYMENT_REQUIRED);
    assert!(page
        .html
        .contains("Your card was declined and nothing was charged"));
    assert_ne!(page.input("idempotency_key"), form.input("idempotency_key"));
    assert_eq!(
        page.input("passengers[0].given_name").as_deref(),
        Some("Ed")
    );
    assert_eq!(app.seats_left().await, 5);

    // The next try with a good card books under the new key.
    let retry = booking_fields(&page, "Ed", CARD_OK);
    let booked = visitor
        .post(&format!("/book/{}", app.flight.id), &borrowed(&retry))
        .await;
    assert_eq!(booked.status, StatusCode::SEE_OTHER, "{}", booked.html);
    assert_eq!(app.charges().await, 1);
}

/// The payment service cannot be reached before anything is sent to it: the page may promise nothing was charged.
async fn an_unreachable_payment_service_says_nothing_was_charged(engine: Engine) {
    let app = TestApp::start(engine, "site_no_provider", 5).await;
    // Cold token, token endpoint down: the card cannot even be tokenised.
    app.sandbox_faults(serde_json::json!({"token_endpoint_down": true}))
        .await;
    let mut visitor = Visitor::new(app.router.clone());
    let (_, page) = submit_booking(&app, &mut visitor, "Gu", CARD_OK).await;
    assert_eq!(
        page.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        page.html
    );
    assert!(page.html.contains("Nothing was charged"), "{}", page.html);
    assert_eq!((app.charges().await, app.seats_left().await), (0, 5));
}

async fn an_unknown_payment_outcome_shows_the_confirming_page(engine: Engine) {
    let app = TestApp::start(engine, "site_pending", 5).await;
    app.sandbox_faults(serde_json::json!({"fail_next_charges": 1000}))
        .await;
    let mut visitor = Visitor::new(app.router.clone());
    let (_, posted) = submit_booking(&app, &mut visitor, "Fa", CARD_OK).await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER, "{}", posted.html);
    let page = visitor.follow(&posted).await;
    assert!(page.html.contains("Confirming your payment"));
    assert!(
        page.html.contains(r#"<meta http-equiv="refresh""#),
        "the page refreshes itself"
    );
    assert_eq!(
        page.text_of_id("status").as_deref(),
        Some("payment pending")
    );
}

async fn find_my_booking_needs_the_contact_email(engine: Engine) {
    let app = TestApp::start(engine, "site_find", 5).await;
    let mut owner = Visitor::new(app.router.clone());
    let reference = book_through_site(&app, &mut owner, "Gus").await;

    let mut stranger = Visitor::new(app.router.clone());
    let sent_away = stranger.get(&format!("/bookings/{reference}")).await;
    assert_eq!(sent_away.status, StatusCode::SEE_OTHER);
    assert_eq!(
        sent_away.location,
        Some(format!("/find?reference={reference}"))
    );
    let find = stranger.follow(&sent_away).await;
    assert_eq!(find.input("reference"), Some(reference.clone()));

    let wrong = stranger
        .post(
            "/find",
            &[
                ("csrf", &find.csrf()),
                ("reference", &reference),
                ("email", "someone@example.com"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong
        .html
        .contains("no booking matches this reference and email"));

    let right = stranger
        .post(
            "/find",
            &[
                ("csrf", &find.csrf()),
                ("reference", &reference.to_lowercase()),
                ("email", "GUS@example.com"),
            ],
        )
        .await;
    assert_eq!(right.status, StatusCode::SEE_OTHER);
    let page = stranger.follow(&right).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.text_of_id("reference"), Some(reference));
}

async fn the_draft_survives_on_another_node_without_card_fields(engine: Engine) {
    let app = TestApp::start(engine, "site_draft", 5).await;
    let mut visitor = Visitor::new(app.router.clone());
    let path = format!("/book/{}", app.flight.id);
    let form = visitor.get(&format!("{path}?passengers=2")).await;
    let saved = visitor
        .post(
            &format!("{path}/draft"),
            &[
                ("csrf", &form.csrf()),
                ("idempotency_key", &form.input("idempotency_key").unwrap()),
                ("passengers[0].given_name", "Hana"),
                ("passengers[1].family_name", "Ito"),
                ("contact_email", "hana@example.com"),
                ("card.number", CARD_OK),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::NO_CONTENT);

    visitor.switch_to(app.another_node());
    let back = visitor.get(&path).await;
    assert_eq!(
        back.input("passengers[0].given_name").as_deref(),
        Some("Hana")
    );
    assert_eq!(
        back.input("passengers[1].family_name").as_deref(),
        Some("Ito")
    );
    assert_eq!(
        back.input("contact_email").as_deref(),
        Some("hana@example.com")
    );
    assert_eq!(
        back.input("idempotency_key"),
        form.input("idempotency_key"),
        "same form, same key"
    );
    assert!(!back.html.contains(CARD_OK));
}

backend_tests!(
    search_shows_results_and_is_remembered_across_nodes,
    search_errors_are_all_listed,
    a_booking_goes_from_form_to_confirmation,
    invalid_form_lists_every_problem_and_clears_the_card,
    a_double_submit_makes_one_booking,
    an_unreachable_payment_service_says_nothing_was_charged,
    a_fresh_browser_is_told_the_booking_exists,
    posts_without_the_sessions_csrf_token_or_key_are_refused,
    a_declined_card_gets_the_form_back_with_a_new_key,
    an_unknown_payment_outcome_shows_the_confirming_page,
    find_my_booking_needs_the_contact_email,
    the_draft_survives_on_another_node_without_card_fields,
);
