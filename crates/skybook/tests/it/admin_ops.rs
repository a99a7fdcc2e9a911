//! The operations dashboard in a real browser (headless Chromium) against a deployment of three processes on one
//! PostgreSQL: two `worker` nodes and a `serve --no-workers` node whose pages the operator uses.
//!
//! - "Retry all" on a filter retries every job it matches, and no other.
//! - A queue paused from the page is claimed from by neither worker node (each has looked at its queue twice
//!   since the job arrived, and left it), and resumed, its job runs.
//! - A large upload's progress moves on the open imports page, in place, while it runs.
//! - The data browser filters, sorts, pages and exports the imported rows.

use std::time::{Duration, Instant};

use chrono::Utc;
use fantoccini::{Client, Locator};
use skybook_domain::JobId;
use skybook_storage::{Enqueued, NewJob, Store};
use skybook_testkit::process::{deployment, migrate, start_sandbox, Running};
use skybook_testkit::{fixtures, Engine};

use crate::chrome::{fill, Chrome};

const EXE: &str = env!("CARGO_BIN_EXE_skybook");
const ADMIN_TOKEN: &str = "admin-token-of-the-operations-test-000001";
/// Rows of the upload: enough that reading it takes a few seconds, so its progress is seen moving.
const ROWS: u64 = 3_000_000;

/// Runs `script` until it returns `true`; panics after `within`.
async fn until(browser: &Client, script: &str, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    loop {
        if browser.execute(script, vec![]).await.unwrap().as_bool() == Some(true) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (bounded) until `check` holds of the store.
async fn until_stored<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn enqueue(store: &Store, kind: &str) -> JobId {
    let job = NewJob {
        queue: "default".into(),
        kind: kind.into(),
        payload: "{}".into(),
        priority: 0,
        max_attempts: 1,
        run_at: Utc::now(),
        unique_key: None,
        tenant_id: None,
    };
    match store.enqueue_job(&job, Utc::now()).await.unwrap() {
        Enqueued::New(id) => id,
        Enqueued::Duplicate => panic!("duplicate"),
    }
}

async fn click(browser: &Client, css: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn main_text(browser: &Client) -> String {
    browser
        .execute("return document.getElementById('main').innerText", vec![])
        .await
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_retries_pauses_watches_an_import_and_browses_its_rows() {
    let dir = skybook_testkit::test_dir("admin_ops");
    let url = skybook_testkit::fresh_database_url(Engine::Postgres, "admin_ops").await;
    migrate(EXE, &url);
    let store = skybook_testkit::store_at(&url).await;
    fixtures::tenant_with_flight(&store, "demo", 5).await;
    let feeds = dir.join("feeds");
    std::fs::create_dir_all(&feeds).unwrap();
    std::fs::write(
        feeds.join("points.toml"),
        skybook_testkit::fixtures::POINTS_FEED,
    )
    .unwrap();
    let (_sandbox, sandbox) = start_sandbox(EXE, &dir);
    let workers: Vec<Running> = ["node-a-worker", "node-c-worker"]
        .into_iter()
        .map(|name| {
            let mut cmd = deployment(EXE, "worker", &url, &sandbox);
            cmd.env("RUST_LOG", "info,skybook_worker::queue=trace");
            let worker = Running::start(cmd, &dir, name);
            worker.wait_for_line("background workers starting");
            worker
        })
        .collect();
    let mut serve = deployment(EXE, "serve", &url, &sandbox);
    serve
        .args([
            "--listen",
            "127.0.0.1:0",
            "--no-workers",
            "--insecure-cookies",
        ])
        .env("SKYBOOK_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("SKYBOOK_FEEDS_DIR", &feeds);
    let node = Running::start(serve, &dir, "node-b-serve");
    let site = node.serving_url();

    let chrome = Chrome::start(&dir);
    let browser = chrome.browser().await;
    browser.goto(&format!("{site}/admin/login")).await.unwrap();
    fill(&browser, "f-token", ADMIN_TOKEN).await;
    click(&browser, "form button[type=submit]").await;

    // Retry all matching: four failed jobs of one kind, one of another; the filter names the first kind.
    let mut failing = Vec::new();
    for _ in 0..4 {
        failing.push(enqueue(&store, "ops.missing").await);
    }
    let other = enqueue(&store, "ops.other").await;
    until_stored("the five jobs to fail", || async {
        let mut all = failing.clone();
        all.push(other);
        let mut failed = true;
        for id in &all {
            failed &= store.job(*id).await.unwrap().unwrap().state == "failed";
        }
        failed
    })
    .await;
    browser
        .goto(&format!("{site}/admin/jobs?state=failed&kind=ops.missing"))
        .await
        .unwrap();
    assert!(main_text(&browser)
        .await
        .contains("Every job matching this filter (4)"));
    click(
        &browser,
        "input[name=scope][value=matching] ~ p button[value=retry]",
    )
    .await;
    until(
        &browser,
        "return document.getElementById('main').innerText.includes('Queued to run now: 4 job(s).')",
        Duration::from_secs(10),
        "the retry's notice",
    )
    .await;
    until_stored("the four to run again", || async {
        let mut again = true;
        for id in &failing {
            again &= store.job(*id).await.unwrap().unwrap().attempts == 2;
        }
        again
    })
    .await;
    assert_eq!(
        store.job(other).await.unwrap().unwrap().attempts,
        1,
        "not matched, not retried"
    );

    // Pause the queue from the page: neither worker node claims from it.
    browser.goto(&format!("{site}/admin/jobs")).await.unwrap();
    click(&browser, "form[action='/admin/queues'] button[value=pause]").await;
    until(
        &browser,
        "return document.getElementById('main').innerText.includes('Paused queue default.')",
        Duration::from_secs(10),
        "the pause's notice",
    )
    .await;
    let held = enqueue(&store, "sentinel").await;
    let enqueued = store.job(held).await.unwrap().unwrap().created_at;
    for worker in &workers {
        // A round begun (its line is logged as it begins) after the job was in has looked at the queue and left it.
        loop {
            let line = worker.wait_for_line("claim round");
            let at: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
            let at: chrono::DateTime<Utc> = at["timestamp"].as_str().unwrap().parse().unwrap();
            if at > enqueued {
                break;
            }
        }
    }
    let job = store.job(held).await.unwrap().unwrap();
    assert_eq!(
        (job.state.as_str(), job.attempts),
        ("queued", 0),
        "claimed from a paused queue"
    );
    click(
        &browser,
        "form[action='/admin/queues'] button[value=resume]",
    )
    .await;
    until_stored("the held job to run once resumed", || async {
        store.job(held).await.unwrap().unwrap().state == "done"
    })
    .await;

    // A large upload, watched on the open imports page: its progress moves in place while it runs.
    let csv = dir.join("points.csv");
    {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
        writeln!(out, "id,value,label").unwrap();
        for i in 0..ROWS {
            writeln!(
                out,
                "{i},{}.{:03},{}",
                i % 1000,
                (i * 7) % 1000,
                if i % 10 == 0 { "tenth" } else { "" }
            )
            .unwrap();
        }
    }
    browser
        .goto(&format!("{site}/admin/imports"))
        .await
        .unwrap();
    until(
        &browser,
        "return document.getElementById('main').getAttribute('data-live') === 'true'",
        Duration::from_secs(10),
        "the page's event stream to open",
    )
    .await;
    let upload = tokio::spawn({
        let (site, csv) = (site.clone(), csv.clone());
        async move {
            let boundary = "skybook-admin-ops-boundary";
            let mut body = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"tenant\"\r\n\r\ndemo\r\n\
                 --{boundary}\r\nContent-Disposition: form-data; name=\"feed\"\r\n\r\npoints\r\n\
                 --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"points.csv\"\r\n\
                 Content-Type: text/csv\r\n\r\n"
            )
            .into_bytes();
            body.extend(std::fs::read(csv).unwrap());
            body.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
            let response = reqwest::Client::new()
                .post(format!("{site}/admin/api/imports"))
                .bearer_auth(ADMIN_TOKEN)
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 202);
            response.json::<serde_json::Value>().await.unwrap()["run"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    });
    // The rows read so far, each time the page shows a new figure.
    let mut seen = Vec::<u64>::new();
    let mut eta_shown = false;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = main_text(&browser).await;
        if let Some(line) = text.lines().find(|l| l.contains("so far")) {
            let rows: u64 = line
                .split(" so far")
                .next()
                .and_then(|before| before.split_whitespace().last())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("a row count in {line:?}"));
            if seen.last() != Some(&rows) {
                seen.push(rows);
            }
            eta_shown |= line.contains("left");
        }
        if text.contains("succeeded") && text.contains(&ROWS.to_string()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the import never showed as succeeded; seen {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let run = upload.await.unwrap();
    assert!(
        seen.len() >= 2,
        "the progress moved on the page while it ran: {seen:?}"
    );
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "and only forward: {seen:?}"
    );
    assert!(eta_shown, "with an ETA");
    let refreshed = browser
        .execute(
            "return document.getElementById('main').getAttribute('data-refreshed')",
            vec![],
        )
        .await
        .unwrap();
    assert!(refreshed.is_string(), "updated in place, without a reload");
    chrome.screenshot(&browser, "admin-import-progress").await;
    let finished = store
        .import_run(run.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (finished.status.as_str(), finished.rows_read),
        ("succeeded", ROWS as i64)
    );

    // The data browser: filter, sort, page, export.
    browser
        .goto(&format!("{site}/admin/data/points"))
        .await
        .unwrap();
    let min = browser
        .find(Locator::Css("input[name='value.min']"))
        .await
        .unwrap();
    min.send_keys("999.99").await.unwrap();
    click(&browser, "form.filters button[type=submit]").await;
    click(&browser, "thead a[href*='sort=id']").await;
    click(&browser, "thead a[href*='sort=id']").await;
    let ids = "return Array.from(document.querySelectorAll('table.data tbody tr')).map(r => Number(r.children[1].textContent))";
    let first: Vec<i64> =
        serde_json::from_value(browser.execute(ids, vec![]).await.unwrap()).unwrap();
    // value = i % 1000 + ((i * 7) % 1000) / 1000 ≥ 999.99: i % 1000 = 999 and (i * 7) % 1000 ≥ 990.
    let mut want: Vec<i64> = (0..ROWS as i64)
        .filter(|i| i % 1000 == 999 && (i * 7) % 1000 >= 990)
        .collect();
    want.reverse();
    assert_eq!(
        first,
        want[..first.len().min(want.len())],
        "sorted by id, descending"
    );
    assert_eq!(first.len(), 50.min(want.len()));
    click(&browser, "a[rel=next]").await;
    let second: Vec<i64> =
        serde_json::from_value(browser.execute(ids, vec![]).await.unwrap()).unwrap();
    assert_eq!(second, want[50..(100.min(want.len()))]);
    let exported = browser
        .execute_async(
            "const done = arguments[0]; \
             fetch(document.querySelector('a[href*=\"export.csv\"]').href).then(r => r.text()).then(t => done(t))",
            vec![],
        )
        .await
        .unwrap();
    let lines: Vec<&str> = exported.as_str().unwrap().lines().collect();
    assert_eq!(lines[0], "tenant,id,value,label");
    assert_eq!(lines.len() - 1, want.len(), "every matching row exported");
    assert!(
        lines[1].starts_with(&format!("demo,{},", want[0])),
        "in the page's order: {}",
        lines[1]
    );
    browser.close().await.unwrap();
    drop(node);
    drop(workers);
}
