//! Cron in the admin: schedules listed as the nodes declared them, paused, resumed and run now — as JSON behind
//! the admin token, and through the page's form with the CSRF token.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::Utc;
use serde_json::Value;
use skybook_storage::{CronRegistration, Engine, NewJob};
use skybook_testkit::backend_tests;

use crate::crashes::admin_get;
use crate::harness::{TestApp, ADMIN_TOKEN};
use crate::visitor::Visitor;

async fn declare(app: &TestApp) {
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
    let schedule = CronRegistration {
        name: "sentinel",
        pattern: "0 * * * * *",
        job: &job,
        exclusive: true,
        next_at: Some(Utc::now()),
    };
    app.store
        .register_cron_schedule(&schedule, Utc::now())
        .await
        .unwrap();
}

async fn post(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let request = Request::post(path)
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = app.request(request).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

async fn operators_see_pause_and_run_schedules(engine: Engine) {
    let app = TestApp::start(engine, "admin_cron", 5).await;
    declare(&app).await;
    let (status, _) = admin_get(&app, "/admin/api/cron", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = admin_get(&app, "/admin/api/cron", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["schedules"][0]["name"], "sentinel");
    assert_eq!(body["schedules"][0]["pattern"], "0 * * * * *");
    assert_eq!(body["schedules"][0]["paused"], false);

    let (_, body) = post(&app, "/admin/api/cron/sentinel/pause").await;
    assert_eq!(
        (
            body["outcome"].as_str(),
            body["schedule"]["paused"].as_bool()
        ),
        (Some("changed"), Some(true))
    );
    let (_, body) = post(&app, "/admin/api/cron/sentinel/run").await;
    assert_eq!(
        body["outcome"], "enqueued",
        "a paused schedule still runs when asked: {body}"
    );
    let job = body["schedule"]["last_job"]["id"]
        .as_str()
        .expect("the run's job")
        .to_owned();
    assert_eq!(body["schedule"]["last_job"]["state"], "queued");
    let (_, again) = post(&app, "/admin/api/cron/sentinel/run").await;
    assert!(
        ["unfinished", "taken"].contains(&again["outcome"].as_str().unwrap()),
        "runs never overlap: {again}"
    );
    assert_eq!(
        app.store.job_counts("sentinel").await.unwrap(),
        [("queued".to_owned(), 1)]
    );
    for (path, status) in [
        ("/admin/api/cron/nonexistent/run", StatusCode::NOT_FOUND),
        ("/admin/api/cron/sentinel/explode", StatusCode::NOT_FOUND),
    ] {
        assert_eq!(post(&app, path).await.0, status, "{path}");
    }

    // The page, without JavaScript: the schedule with its last run; resume through the form.
    let mut visitor = Visitor::new(app.router.clone());
    let csrf = visitor.sign_in_admin(ADMIN_TOKEN).await;
    let page = visitor.get("/admin/cron").await;
    assert!(
        page.html.contains("<code>0 * * * * *</code>"),
        "{}",
        page.main()
    );
    assert!(
        page.html.contains(&format!("/admin/jobs/{job}")),
        "{}",
        page.main()
    );
    assert!(page.html.contains("value=\"resume\""));
    let done = visitor
        .post(
            "/admin/cron",
            &[
                ("csrf", csrf.as_str()),
                ("name", "sentinel"),
                ("action", "resume"),
            ],
        )
        .await;
    assert_eq!(
        done.location.as_deref(),
        Some("/admin/cron?done=changed&name=sentinel")
    );
    assert!(app.store.paused_cron_schedules().await.unwrap().is_empty());
    let forged = visitor
        .post("/admin/cron", &[("name", "sentinel"), ("action", "pause")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}

backend_tests!(operators_see_pause_and_run_schedules);
