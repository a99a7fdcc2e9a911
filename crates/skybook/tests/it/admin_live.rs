//! The live jobs page in a real browser (headless Chromium): two processes on one PostgreSQL — a `worker` that
//! runs the jobs and a `serve --no-workers` whose `/admin/jobs` is open — and a job that finishes on the worker
//! shows as done on the open page without a reload, within a second of finishing.

use std::time::{Duration, Instant};

use chrono::Utc;
use fantoccini::{Client, Locator};
use skybook_storage::{Enqueued, NewJob};
use skybook_testkit::process::{deployment, migrate, start_sandbox, Running};
use skybook_testkit::Engine;

use crate::chrome::{fill, Chrome};

const EXE: &str = env!("CARGO_BIN_EXE_skybook");
const ADMIN_TOKEN: &str = "admin-token-of-the-live-dashboard-test-0001";

/// Runs `script` (which returns a value) until it returns `Some(true)`-like truthiness; panics after `within`.
async fn until(browser: &Client, script: &str, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    loop {
        let value = browser.execute(script, vec![]).await.unwrap();
        if value.as_bool() == Some(true) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_finishing_on_another_node_shows_on_an_open_dashboard() {
    let dir = skybook_testkit::test_dir("admin_live");
    let url = skybook_testkit::fresh_database_url(Engine::Postgres, "admin_live").await;
    migrate(EXE, &url);
    let store = skybook_testkit::store_at(&url).await;
    let (_sandbox, sandbox) = start_sandbox(EXE, &dir);
    let worker = Running::start(
        deployment(EXE, "worker", &url, &sandbox),
        &dir,
        "node-a-worker",
    );
    worker.wait_for_line("background workers starting");
    let mut serve = deployment(EXE, "serve", &url, &sandbox);
    serve
        .args([
            "--listen",
            "127.0.0.1:0",
            "--no-workers",
            "--insecure-cookies",
        ])
        .env("SKYBOOK_ADMIN_TOKEN", ADMIN_TOKEN);
    let dashboard = Running::start(serve, &dir, "node-b-serve");
    let site = dashboard.serving_url();

    let chrome = Chrome::start(&dir);
    let browser = chrome.browser().await;
    browser.goto(&format!("{site}/admin/login")).await.unwrap();
    fill(&browser, "f-token", ADMIN_TOKEN).await;
    browser
        .find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser.goto(&format!("{site}/admin/jobs")).await.unwrap();
    until(
        &browser,
        "return document.getElementById('main').getAttribute('data-live') === 'true'",
        Duration::from_secs(10),
        "the page's event stream to open",
    )
    .await;

    // A job for the worker node (the sentinel's sweep: harmless, and only the worker runs jobs).
    let job = NewJob {
        queue: "default".into(),
        kind: "sentinel".into(),
        payload: "{}".into(),
        priority: 0,
        max_attempts: 3,
        run_at: Utc::now(),
        unique_key: None,
        tenant_id: None,
    };
    let Enqueued::New(id) = store.enqueue_job(&job, Utc::now()).await.unwrap() else {
        panic!("not enqueued");
    };
    let done = format!(
        "const a = document.querySelector('a[href=\"/admin/jobs/{id}\"]'); \
         return !!a && a.closest('tr').children[4].textContent.trim() === 'done'"
    );
    until(
        &browser,
        &done,
        Duration::from_secs(20),
        "the job to show as done",
    )
    .await;
    let seen = Utc::now();
    let finished = store.job(id).await.unwrap().unwrap();
    assert_eq!(finished.state, "done");
    let lag = seen - finished.finished_at.expect("finished");
    chrome.screenshot(&browser, "admin-jobs-live").await;
    assert!(
        lag < chrono::Duration::seconds(1),
        "on screen {} ms after it finished on the other node",
        lag.num_milliseconds()
    );
    let reloads: Option<String> = browser
        .execute(
            "return document.getElementById('main').getAttribute('data-refreshed')",
            vec![],
        )
        .await
        .unwrap()
        .as_str()
        .map(str::to_owned);
    assert!(
        reloads.is_some(),
        "the page changed in place, without a reload"
    );
    browser.close().await.unwrap();
}
