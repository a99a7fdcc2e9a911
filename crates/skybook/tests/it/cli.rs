//! Configuration mistakes, schema checks and the demo, as a person at a terminal meets them.

use serde_json::Value;
use skybook_testkit::fixtures::CARD_OK;
use skybook_testkit::process::post_booking;
use skybook_testkit::{backend_tests, Engine};

use crate::process::{run_to_end, skybook, Running};

const KEY: &str = "0123456789abcdef0123456789abcdef";

/// Each mistake stops startup with exactly one line that names the setting.
#[test]
fn config_mistakes_are_one_line_naming_the_setting() {
    let serve = |env: &[(&str, &str)]| {
        let mut cmd = skybook();
        cmd.arg("serve");
        for (k, v) in env {
            cmd.env(k, v);
        }
        run_to_end(cmd)
    };
    let base = [
        ("SKYBOOK_DATABASE_URL", "sqlite:///nonexistent/dir/x.db"),
        ("SKYBOOK_SECRET_KEY", KEY),
        ("SKYBOOK_PAYMENTS_URL", "http://127.0.0.1:9"),
    ];
    let with = |k: &'static str, v: &'static str| {
        let mut env: Vec<(&str, &str)> = base
            .iter()
            .copied()
            .filter(|(name, _)| *name != k)
            .collect();
        env.push((k, v));
        env
    };
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![], "SKYBOOK_DATABASE_URL"),
        (
            with("SKYBOOK_DATABASE_URL", "mysql://db"),
            "SKYBOOK_DATABASE_URL",
        ),
        (
            with(
                "SKYBOOK_DATABASE_URL",
                "postgres://u@db-a:5432,db-b:5432/skybook?target_session_attrs=read-write",
            ),
            "SKYBOOK_DATABASE_URL",
        ),
        (
            with("SKYBOOK_DATABASE_RETRY_BUDGET", "soon"),
            "SKYBOOK_DATABASE_RETRY_BUDGET",
        ),
        (with("SKYBOOK_SECRET_KEY", "short"), "SKYBOOK_SECRET_KEY"),
        (
            with("SKYBOOK_PAYMENTS_URL", "not a url"),
            "SKYBOOK_PAYMENTS_URL",
        ),
        (with("SKYBOOK_LISTEN", "nowhere"), "SKYBOOK_LISTEN"),
        (
            with("SKYBOOK_PAYMENTS_CLIENT_ID", "skybook"),
            "SKYBOOK_PAYMENTS_TOKEN_URL",
        ),
        (
            with("SKYBOOK_ENABLE_FAULT_INJECTION", "maybe"),
            "SKYBOOK_ENABLE_FAULT_INJECTION",
        ),
        (
            with("SKYBOOK_DATABASE_MAX_CONNECTIONS", "0"),
            "SKYBOOK_DATABASE_MAX_CONNECTIONS",
        ),
        (
            with("SKYBOOK_SMTP_URL", "mail.example.com"),
            "SKYBOOK_SMTP_URL",
        ),
        (
            // Scheme and host are fine; the TLS mode is not one lettre knows.
            with("SKYBOOK_SMTP_URL", "smtp://mail.example.com:25?tls=bogus"),
            "SKYBOOK_SMTP_URL",
        ),
        (
            with("SKYBOOK_MAIL_FROM", "not an address"),
            "SKYBOOK_MAIL_FROM",
        ),
        (with("SKYBOOK_OPS_EMAIL", "ops@"), "SKYBOOK_OPS_EMAIL"),
        (
            with("SKYBOOK_ALERT_WEBHOOK_URL", "slack"),
            "SKYBOOK_ALERT_WEBHOOK_URL",
        ),
        (
            with("SKYBOOK_SENTINEL_SCHEDULE", "every minute"),
            "SKYBOOK_SENTINEL_SCHEDULE",
        ),
        (with("SKYBOOK_SEAT_HOLD", "0s"), "SKYBOOK_SEAT_HOLD"),
        (
            with("SKYBOOK_SENTRY_DSN", "sentry please"),
            "SKYBOOK_SENTRY_DSN",
        ),
    ];
    for (env, named) in cases {
        let (code, stderr) = serve(&env);
        assert_ne!(code, 0, "{env:?} must stop startup");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line for {env:?}, got: {stderr}");
        assert!(
            lines[0].contains(named),
            "{env:?}: the line names {named}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_on_postgres_refuses_an_outdated_schema_until_migrated() {
    let url = skybook_testkit::fresh_database_url(Engine::Postgres, "outdated").await;
    let dir = skybook_testkit::test_dir("outdated");
    let serve = || {
        let mut cmd = skybook();
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .env("SKYBOOK_DATABASE_URL", &url)
            .env("SKYBOOK_SECRET_KEY", KEY)
            .env("SKYBOOK_PAYMENTS_URL", "http://127.0.0.1:9");
        cmd
    };
    let (code, stderr) = run_to_end(serve());
    assert_ne!(code, 0);
    assert!(stderr.contains("run `skybook migrate`"), "{stderr}");

    let mut migrate = skybook();
    migrate.arg("migrate").env("SKYBOOK_DATABASE_URL", &url);
    let (code, stderr) = run_to_end(migrate);
    assert_eq!(code, 0, "{stderr}");

    let server = Running::start(serve(), &dir, "serve");
    let base = server.serving_url();
    let ready = reqwest::get(format!("{base}/ready")).await.unwrap();
    assert_eq!(ready.status(), 200);
}

/// `migrate --check` names what is pending and fails, applies nothing, and passes once `migrate` ran; two
/// `migrate` runs at once on a fresh database both succeed (each migration is applied once).
async fn migrate_check_names_pending_migrations_and_two_migrations_at_once_agree(engine: Engine) {
    let url = skybook_testkit::fresh_database_url(engine, "migrate_check").await;
    let run = |args: &[&str]| {
        let mut cmd = skybook();
        cmd.args(args).env("SKYBOOK_DATABASE_URL", &url);
        cmd
    };
    let check = |cmd: std::process::Command| {
        let mut cmd = cmd;
        let out = cmd.stdin(std::process::Stdio::null()).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = check(run(&["migrate", "--check"]));
    assert_ne!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("pending: 20261122000001 bookings"),
        "{stdout}"
    );
    assert!(stderr.contains("run `skybook migrate`"), "{stderr}");
    let (again, ..) = check(run(&["migrate", "--check"]));
    assert_ne!(again, 0, "--check applied nothing");

    // Two migrate Jobs at once, as a rollout can start them: on PostgreSQL sqlx holds an advisory lock for the
    // run, so the second waits and finds nothing to do. (SQLite is one machine's file: one after the other.)
    let mut first = run(&["migrate"]);
    let mut second = run(&["migrate"]);
    let outputs = match engine {
        Engine::Postgres => {
            let (a, b) = (first.spawn().unwrap(), second.spawn().unwrap());
            [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()]
        }
        Engine::Sqlite => [first.output().unwrap(), second.output().unwrap()],
    };
    for out in &outputs {
        assert!(out.status.success(), "{out:?}");
    }

    let (code, stdout, stderr) = check(run(&["migrate", "--check"]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("schema is current"), "{stdout}");
}

backend_tests!(migrate_check_names_pending_migrations_and_two_migrations_at_once_agree);

/// `skybook demo` from an empty data dir: seeded flights, a booking through the in-process sandbox, the secret
/// key and admin token written, and a restart keeps everything (seeding is idempotent). On SQLite by default,
/// and on PostgreSQL with `--database-url`.
async fn demo_runs_from_an_empty_data_dir(engine: Engine) {
    let dir = skybook_testkit::test_dir("demo");
    let data = dir.join("data");
    let database_url = match engine {
        Engine::Sqlite => None,
        Engine::Postgres => Some(skybook_testkit::fresh_database_url(engine, "demo").await),
    };
    let demo = |fault_injection: &str| {
        let mut cmd = skybook();
        cmd.args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .env("SKYBOOK_ENABLE_FAULT_INJECTION", fault_injection);
        if let Some(url) = &database_url {
            cmd.arg("--database-url").arg(url);
        }
        cmd
    };
    let reference = {
        let server = Running::start(demo("1"), &dir, "demo-1");
        let site = site_url(&server);
        assert_eq!(
            debug_panic(&site).await,
            500,
            "SKYBOOK_ENABLE_FAULT_INJECTION=1 mounts /debug/panic in the demo too"
        );
        let flights = dub_to_lhr(&site).await;
        assert!(
            flights.len() >= 58,
            "two a day for 30 days (today's may have left): {}",
            flights.len()
        );
        assert_eq!(
            flights[0]["fare"],
            serde_json::json!({"amount_minor": 9599, "currency": "EUR"})
        );
        let body = serde_json::json!({
            "flight_id": flights[0]["id"], "contact_email": "demo@example.com",
            "passengers": [{"given_name": "Bryan", "family_name": "Hunt"}],
            "card": {"number": CARD_OK, "exp_month": 12, "exp_year": 2031, "cvc": "123"}
        });
        let (status, booked) = post_booking(
            &reqwest::Client::new(),
            &site,
            "demo",
            "demo-test-key-000001",
            &body,
        )
        .await;
        assert_eq!(status, 201, "{booked}");
        let reference = booked["booking"]["reference"].as_str().unwrap().to_owned();
        // Without SKYBOOK_SMTP_URL the demo's outbox sender writes the confirmation to <data-dir>/mail.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let mails: Vec<String> = std::fs::read_dir(data.join("mail"))
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .collect();
            if let Some(mail) = mails.iter().find(|m| m.contains(&reference)) {
                assert!(
                    mail.contains("To: demo@example.com") && !mail.contains(CARD_OK),
                    "{mail}"
                );
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no .eml for {reference}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        reference
    };
    assert_eq!(
        std::fs::read_to_string(data.join("secret-key"))
            .unwrap()
            .trim()
            .len(),
        64
    );
    assert_eq!(
        std::fs::read_to_string(data.join("admin-token"))
            .unwrap()
            .trim()
            .len(),
        64
    );

    let server = Running::start(demo("0"), &dir, "demo-2");
    let site = site_url(&server);
    assert_eq!(
        debug_panic(&site).await,
        404,
        "without fault injection there is no /debug/panic"
    );
    let shown = reqwest::get(format!(
        "{site}/api/v1/tenants/demo/bookings/{reference}?email=demo@example.com"
    ))
    .await
    .unwrap();
    assert_eq!(shown.status(), 200, "the booking survives a restart");
    assert!(
        dub_to_lhr(&site).await.len() <= 60,
        "re-seeding added no duplicates"
    );

    // The catalog came in through the importer: today's files of both feeds the demo tenant subscribes to,
    // imported at the first start and skipped at the second (the same content).
    let url = database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", data.join("skybook.db").display()));
    let store = skybook_testkit::store_at(&url).await;
    let tenant = store
        .tenant_by_slug(&skybook_domain::TenantSlug::parse("demo").unwrap())
        .await
        .unwrap()
        .unwrap();
    let mut feeds = store.tenant_feeds(tenant.id).await.unwrap();
    feeds.sort();
    assert_eq!(feeds, ["airports", "flights"]);
    for feed in ["flights", "airports"] {
        let filter = skybook_storage::ImportRunFilter {
            tenant_id: Some(tenant.id),
            feed: Some(feed.into()),
            status: None,
            limit: 10,
        };
        let runs = store.import_runs(&filter).await.unwrap();
        // Newest first. The nightly schedule may have caught up on last night's tick as well: skipped too, or, if
        // the demo was stopped while that run read the file, left `running` (the next start marks it abandoned).
        let statuses: Vec<&str> = runs.iter().map(|r| r.status.as_str()).collect();
        let (first, later) = runs.split_last().unwrap();
        assert_eq!(first.status, "succeeded", "{feed}: {statuses:?}");
        assert!(
            later.iter().any(|r| r.status == "skipped")
                && later
                    .iter()
                    .all(|r| r.status == "skipped" || r.status == "running"),
            "{feed}: {statuses:?}"
        );
        assert_eq!(first.feed_date, Some(chrono::Utc::now().date_naive()));
        assert!(
            first.source.contains(&format!("/feeds/demo/{feed}?date=")),
            "{}",
            first.source
        );
        if feed == "flights" {
            assert_eq!(first.rows_read, 4 * 30, "four departures a day for 30 days");
            assert_eq!(first.rows_inserted, 4 * 30);
        }
    }
}

backend_tests!(demo_runs_from_an_empty_data_dir);

async fn dub_to_lhr(site: &str) -> Vec<Value> {
    let url = format!("{site}/api/v1/tenants/demo/flights?origin=DUB&destination=LHR");
    let flights: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    flights["flights"].as_array().unwrap().clone()
}

/// The status `POST /debug/panic` answers.
async fn debug_panic(site: &str) -> u16 {
    let response = reqwest::Client::new()
        .post(format!("{site}/debug/panic"))
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

fn site_url(server: &Running) -> String {
    server.url_after("site:")
}
