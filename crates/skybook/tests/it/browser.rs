//! The website in a real browser (headless Chromium) against a real `skybook demo` process: the journeys a
//! traveller takes, a server restart in the middle of one, a double click, a second browser, and a forged POST.
//! Screenshots of each main page land in `<test data>/browser-*/screenshots/`.

use std::path::{Path, PathBuf};

use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
use fantoccini::{Client, Locator};
use serde_json::Value;
use skybook_testkit::fixtures::CARD_OK;

use crate::chrome::{fill, text, value, Chrome};
use crate::process::{skybook, Running};

/// A `skybook demo` process (SQLite, the sandbox in-process) and where to reach it.
struct Demo {
    server: Running,
    site: String,
    sandbox: String,
}

impl Demo {
    fn start(dir: &Path, listen: &str, name: &str) -> Self {
        let mut cmd = skybook();
        cmd.args(["demo", "--listen", listen, "--data-dir"])
            .arg(dir.join("data"));
        let server = Running::start(cmd, dir, name);
        let site = server.url_after("site:");
        let sandbox = server.url_after("sandbox:");
        Self {
            server,
            site,
            sandbox,
        }
    }

    /// Stops the process (SIGKILL: nothing in memory survives) and starts it again on the same port and data.
    fn restart(self, dir: &Path) -> Self {
        let listen = self.site.trim_start_matches("http://").to_owned();
        drop(self.server);
        Self::start(dir, &listen, "demo-restarted")
    }

    async fn charges(&self) -> i64 {
        skybook_testkit::process::sandbox_charges(&self.sandbox).await
    }

    async fn seats_left(&self, flight_id: &str) -> u64 {
        let flights: Value = reqwest::get(format!(
            "{}/api/v1/tenants/demo/flights?origin=DUB&destination=LHR",
            self.site
        ))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        flights["flights"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == flight_id)
            .map(|f| f["seats_left"].as_u64().unwrap())
            .expect("the flight is listed")
    }

    /// How many booking-form POSTs reached the server (from its Prometheus metrics).
    async fn booking_posts(&self) -> u64 {
        let metrics = reqwest::get(format!("{}/metrics", self.site))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        metrics
            .lines()
            .filter(|l| {
                l.starts_with("skybook_http_requests_total")
                    && l.contains(r#"method="POST""#)
                    && l.contains(r#"route="/book/{flight}""#)
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    }

    async fn faults(&self, faults: Value) {
        skybook_testkit::process::sandbox_faults(&self.sandbox, faults).await;
    }
}

/// A test's directory, a chromedriver, a `skybook demo` and one fresh browser.
async fn setup(name: &str) -> (PathBuf, Chrome, Demo, Client) {
    let dir = skybook_testkit::test_dir(&format!("browser-{name}"));
    let chrome = Chrome::start(&dir);
    let demo = Demo::start(&dir, "127.0.0.1:0", "demo");
    let browser = chrome.browser().await;
    (dir, chrome, demo, browser)
}

fn tomorrow() -> String {
    (chrono::Utc::now().date_naive() + chrono::Days::new(1)).to_string()
}

/// From the search page to the booking form of the first DUB→LHR flight tomorrow; returns the flight id.
async fn search_and_select(browser: &Client, demo: &Demo, chrome: Option<&Chrome>) -> String {
    browser.goto(&format!("{}/", demo.site)).await.unwrap();
    fill(browser, "f-origin", "DUB").await;
    fill(browser, "f-destination", "LHR").await;
    // A date input's typing format depends on the locale; set its value as the date picker would.
    browser
        .execute(
            "document.getElementById('f-date').value = arguments[0]",
            vec![Value::from(tomorrow())],
        )
        .await
        .unwrap();
    browser
        .find(Locator::Css("form.search button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let heading = text(browser, "#results-title").await;
    assert!(heading.contains("DUB → LHR"), "{heading}");
    if let Some(chrome) = chrome {
        chrome.screenshot(browser, "search-results").await;
    }
    browser
        .find(Locator::Css(".flights a.button.primary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .for_element(Locator::Id("booking-form"))
        .await
        .unwrap();
    let url = browser.current_url().await.unwrap();
    url.path().trim_start_matches("/book/").to_owned()
}

async fn fill_traveller(browser: &Client, given: &str, family: &str) {
    fill(browser, "f-passengers-0-given_name", given).await;
    fill(browser, "f-passengers-0-family_name", family).await;
    fill(
        browser,
        "f-contact_email",
        &format!("{}@example.com", given.to_lowercase()),
    )
    .await;
}

async fn fill_card(browser: &Client) {
    fill(browser, "f-card-number", CARD_OK).await;
    fill(browser, "f-card-exp_month", "12").await;
    fill(browser, "f-card-exp_year", "2031").await;
    fill(browser, "f-card-cvc", "123").await;
}

async fn pay(browser: &Client) {
    browser
        .find(Locator::Id("pay"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Waits for a booking's page to say it is confirmed (a "confirming" page refreshes itself until then) and
/// returns the reference it shows.
async fn booking_reference(browser: &Client) -> String {
    browser
        .wait()
        .for_element(Locator::XPath("//h1[text()='Booking confirmed']"))
        .await
        .expect("the booking's page ends up confirmed");
    let reference = text(browser, "#reference").await;
    assert_eq!(reference.len(), 6, "{reference}");
    reference
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traveller_searches_selects_pays_and_sees_the_confirmation() {
    let (_dir, chrome, demo, browser) = setup("journey").await;

    browser.goto(&format!("{}/", demo.site)).await.unwrap();
    chrome.screenshot(&browser, "search").await;
    search_and_select(&browser, &demo, Some(&chrome)).await;
    fill_traveller(&browser, "Bryan", "Hunt").await;
    fill_card(&browser).await;
    chrome.screenshot(&browser, "booking-form").await;
    pay(&browser).await;
    let reference = booking_reference(&browser).await;
    assert_eq!(text(&browser, "h1").await, "Booking confirmed");
    let page = browser.source().await.unwrap();
    assert!(page.contains("ending 4242") && !page.contains(CARD_OK));
    chrome.screenshot(&browser, "confirmation").await;

    // Find my booking, from the header link.
    browser.goto(&format!("{}/find", demo.site)).await.unwrap();
    chrome.screenshot(&browser, "find").await;
    assert_eq!(demo.charges().await, 1);
    let shown: Value = reqwest::get(format!(
        "{}/api/v1/tenants/demo/bookings/{reference}?family_name=Hunt",
        demo.site
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(shown["booking"]["status"], "confirmed");
    browser.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_form_loses_neither_the_search_nor_the_typed_fields() {
    let (dir, chrome, demo, browser) = setup("restart").await;
    let flight = search_and_select(&browser, &demo, None).await;
    fill_traveller(&browser, "Iris", "Novak").await;
    // Moving on to the card blurs the email field; its change event saves the draft server-side. Wait for
    // that save (the flag is cleared first so an earlier field's save cannot satisfy the wait).
    browser
        .execute(
            "delete document.getElementById('booking-form').dataset.draftSaved",
            vec![],
        )
        .await
        .unwrap();
    fill(&browser, "f-card-number", CARD_OK).await;
    browser
        .wait()
        .for_element(Locator::Css("#booking-form[data-draft-saved='yes']"))
        .await
        .unwrap();

    let demo = demo.restart(&dir);

    browser.goto(&format!("{}/", demo.site)).await.unwrap();
    assert_eq!(value(&browser, "f-origin").await, "DUB");
    assert_eq!(value(&browser, "f-destination").await, "LHR");
    assert_eq!(value(&browser, "f-date").await, tomorrow());
    browser
        .goto(&format!("{}/book/{flight}", demo.site))
        .await
        .unwrap();
    assert_eq!(value(&browser, "f-passengers-0-given_name").await, "Iris");
    assert_eq!(value(&browser, "f-passengers-0-family_name").await, "Novak");
    assert_eq!(value(&browser, "f-contact_email").await, "iris@example.com");
    assert_eq!(
        value(&browser, "f-card-number").await,
        "",
        "card fields are never kept"
    );
    chrome
        .screenshot(&browser, "booking-form-after-restart")
        .await;

    // And the form still books.
    fill_card(&browser).await;
    pay(&browser).await;
    booking_reference(&browser).await;
    assert_eq!(demo.charges().await, 1);
    browser.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_click_on_pay_books_and_charges_once() {
    let (_dir, _chrome, demo, browser) = setup("double-click").await;
    let flight = search_and_select(&browser, &demo, None).await;
    let seats_before = demo.seats_left(&flight).await;
    fill_traveller(&browser, "Jon", "Kerr").await;
    fill_card(&browser).await;
    // A slow provider keeps the first click's request in flight when the second one is sent.
    demo.faults(serde_json::json!({"latency_ms": 400})).await;

    let button = browser.find(Locator::Id("pay")).await.unwrap();
    let clicks = MouseActions::new("mouse".to_owned())
        .then(PointerAction::MoveToElement {
            element: button,
            duration: None,
            x: 0.0,
            y: 0.0,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        })
        // About a person's double-click interval.
        .pause(std::time::Duration::from_millis(120))
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    browser.perform_actions(clicks).await.unwrap();
    let reference = booking_reference(&browser).await;

    let posts = demo.booking_posts().await;
    assert_eq!(posts, 2, "both clicks reached the server");
    assert_eq!(demo.charges().await, 1, "one charge for {reference}");
    assert_eq!(
        demo.seats_left(&flight).await,
        seats_before - 1,
        "one booking"
    );
    browser.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_browser_booking_the_same_trip_is_told_it_exists() {
    let (_dir, chrome, demo, first) = setup("second-browser").await;
    search_and_select(&first, &demo, None).await;
    fill_traveller(&first, "Kim", "Lund").await;
    fill_card(&first).await;
    pay(&first).await;
    let reference = booking_reference(&first).await;
    first.close().await.unwrap();

    // A fresh browser (no cookies) and the same traveller, flight and card.
    let second = chrome.browser().await;
    search_and_select(&second, &demo, None).await;
    fill_traveller(&second, "Kim", "Lund").await;
    fill_card(&second).await;
    pay(&second).await;
    assert_eq!(text(&second, "h1").await, "You already have this booking");
    assert_eq!(text(&second, "#reference").await, reference);
    assert!(second
        .source()
        .await
        .unwrap()
        .contains("No second charge was made"));
    chrome.screenshot(&second, "already-booked").await;
    assert_eq!(demo.charges().await, 1);
    second.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_post_without_the_csrf_token_is_refused() {
    let (_dir, chrome, demo, browser) = setup("csrf").await;
    let flight = search_and_select(&browser, &demo, None).await;
    let seats_before = demo.seats_left(&flight).await;
    fill_traveller(&browser, "Lea", "Moss").await;
    fill_card(&browser).await;
    browser
        .execute(
            "document.querySelector('input[name=csrf]').remove()",
            vec![],
        )
        .await
        .unwrap();
    pay(&browser).await;
    assert_eq!(text(&browser, "h1").await, "This form has expired");
    chrome.screenshot(&browser, "csrf-refused").await;
    assert_eq!(demo.charges().await, 0);
    assert_eq!(demo.seats_left(&flight).await, seats_before);
    browser.close().await.unwrap();
}
