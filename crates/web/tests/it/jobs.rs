//! The job queue in the admin API: listed with counts, filtered and paged; a job with its failed attempts;
//! retry, cancel and delete by id or by filter; queues paused and resumed — behind the admin token, every bad
//! parameter named, and a signed-in admin's actions only with the session's CSRF token.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{Duration, Utc};
use serde_json::{json, Value};
use skybook_domain::JobId;
use skybook_storage::{Engine, Enqueued, NewJob};
use skybook_testkit::backend_tests;

use crate::crashes::admin_get;
use crate::harness::{TestApp, ADMIN_TOKEN};
use crate::visitor::Visitor;

async fn enqueue(app: &TestApp, kind: &str, tenant: bool, seconds_ago: i64) -> JobId {
    let job = NewJob {
        queue: "default".into(),
        kind: kind.into(),
        payload: json!({ "kind": kind }).to_string(),
        priority: 0,
        max_attempts: 1,
        run_at: Utc::now() - Duration::seconds(1),
        unique_key: None,
        tenant_id: tenant.then_some(app.tenant.id),
    };
    let at = Utc::now() - Duration::seconds(seconds_ago);
    match app.store.enqueue_job(&job, at).await.unwrap() {
        Enqueued::New(id) => id,
        Enqueued::Duplicate => panic!("duplicate"),
    }
}

async fn post(app: &TestApp, path: &str, body: &str) -> (StatusCode, Value) {
    let request = Request::post(path)
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let (status, _, body) = app.request(request).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

async fn the_queue_is_listed_filtered_and_paged(engine: Engine) {
    let app = TestApp::start(engine, "admin_jobs_list", 5).await;
    let a = enqueue(&app, "email.send", false, 30).await;
    let b = enqueue(&app, "import.feed", true, 20).await;
    let c = enqueue(&app, "import.feed", true, 10).await;

    let (status, _) = admin_get(&app, "/admin/api/jobs", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = admin_get(&app, "/admin/api/jobs", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids: Vec<&str> = body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [c.to_string(), b.to_string(), a.to_string()],
        "newest first"
    );
    assert_eq!(
        body["counts"],
        json!([{ "queue": "default", "state": "queued", "count": 3, "estimated": false }])
    );
    assert_eq!(body["jobs"][0]["tenant"], "air");
    assert_eq!(body["jobs"][0]["payload"], json!({ "kind": "import.feed" }));
    assert_eq!(body["jobs"][2]["tenant"], Value::Null);
    assert_eq!(body["next"], Value::Null, "one page holds them all");

    // Two pages of two.
    let (_, first) = admin_get(&app, "/admin/api/jobs?limit=2", Some(ADMIN_TOKEN)).await;
    let next = first["next"].as_str().expect("a next page").to_owned();
    let (_, second) = admin_get(
        &app,
        &format!("/admin/api/jobs?limit=2&after={next}"),
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(second["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(second["jobs"][0]["id"], a.to_string());

    let (_, mine) = admin_get(
        &app,
        "/admin/api/jobs?tenant=air&q=IMPORT",
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(mine["jobs"].as_array().unwrap().len(), 2, "{mine}");
    assert_eq!(mine["counts"][0]["count"], 2, "counts of the tenant's jobs");

    let (status, body) = admin_get(
        &app,
        "/admin/api/jobs?state=lost&limit=0&after=nope&tenant=nobody",
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    for field in ["state", "limit", "after", "tenant"] {
        assert!(body["fields"][field].is_array(), "{field}: {body}");
    }

    // One job, with its failed attempts.
    let claimed = app
        .store
        .claim_jobs("default", "worker-1", Utc::now(), Duration::seconds(60), 1)
        .await
        .unwrap();
    assert_eq!(claimed[0].id, a);
    app.store
        .fail_job(a, "worker-1", "smtp: connection refused", None, Utc::now())
        .await
        .unwrap();
    let (status, body) = admin_get(&app, &format!("/admin/api/jobs/{a}"), Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["job"]["state"], "failed");
    assert_eq!(body["job"]["errors"][0]["worker"], "worker-1");
    assert_eq!(
        body["job"]["errors"][0]["error"],
        "smtp: connection refused"
    );
    for missing in [
        format!("/admin/api/jobs/{}", JobId::new()),
        "/admin/api/jobs/nope".into(),
    ] {
        let (status, _) = admin_get(&app, &missing, Some(ADMIN_TOKEN)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    }
}

async fn operators_act_on_jobs_and_queues(engine: Engine) {
    let app = TestApp::start(engine, "admin_jobs_act", 5).await;
    let a = enqueue(&app, "email.send", false, 30).await;
    let _b = enqueue(&app, "import.feed", true, 20).await;
    let _c = enqueue(&app, "import.feed", true, 10).await;

    let (status, body) = post(
        &app,
        "/admin/api/jobs/cancel",
        r#"{"filter": {"kind": "import.feed"}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["affected"], 2);
    let (_, failed) = admin_get(&app, "/admin/api/jobs?state=failed", Some(ADMIN_TOKEN)).await;
    assert_eq!(failed["jobs"].as_array().unwrap().len(), 2);
    assert_eq!(failed["jobs"][0]["last_error"], "cancelled by an operator");

    let (_, body) = post(
        &app,
        "/admin/api/jobs/retry",
        r#"{"filter": {"state": "failed", "tenant": "air"}}"#,
    )
    .await;
    assert_eq!(body["affected"], 2, "{body}");
    let (_, body) = post(
        &app,
        "/admin/api/jobs/delete",
        &json!({ "ids": [a.to_string()] }).to_string(),
    )
    .await;
    assert_eq!(body["affected"], 1, "{body}");
    assert!(app.store.job(a).await.unwrap().is_none());

    // Every bad body is a 422 naming what is wrong; an unknown action is a 404.
    for (bad, field) in [
        ("[]", "body"),
        ("{}", "body"),
        (r#"{"ids": ["nope"]}"#, "ids"),
        (r#"{"filter": {"colour": "blue"}}"#, "filter.colour"),
        (r#"{"filter": {"state": "lost"}}"#, "state"),
    ] {
        let (status, body) = post(&app, "/admin/api/jobs/retry", bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert!(body["fields"][field].is_array(), "{bad}: {body}");
    }
    let (status, _) = post(&app, "/admin/api/jobs/explode", r#"{"ids": []}"#).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A paused queue is not claimed from, until resumed.
    let (status, body) = post(&app, "/admin/api/queues/default/pause", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["paused"].as_bool(), body["changed"].as_bool()),
        (Some(true), Some(true))
    );
    let (_, listing) = admin_get(&app, "/admin/api/jobs", Some(ADMIN_TOKEN)).await;
    assert_eq!(listing["paused"][0]["queue"], "default");
    let claim = || {
        app.store
            .claim_jobs("default", "w", Utc::now(), Duration::seconds(60), 10)
    };
    assert!(claim().await.unwrap().is_empty(), "paused");
    let (_, body) = post(&app, "/admin/api/queues/default/resume", "").await;
    assert_eq!(body["changed"], true);
    assert_eq!(claim().await.unwrap().len(), 2, "the two retried jobs");
    let (status, _) = post(&app, "/admin/api/queues/default/explode", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Every action is in the audit log: who, what, on which rows, how many.
    let (status, audit) = admin_get(&app, "/admin/api/audit", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let entries: Vec<(String, String, i64)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["target"].as_str().unwrap().to_owned(),
                e["affected"].as_i64().unwrap(),
            )
        })
        .collect();
    let tenant = app.tenant.id;
    assert_eq!(
        entries,
        [
            (
                "jobs.cancel".to_owned(),
                "every job matching kind=import.feed".to_owned(),
                2
            ),
            (
                "jobs.retry".to_owned(),
                format!("every job matching state=failed tenant={tenant}"),
                2
            ),
            ("jobs.delete".to_owned(), format!("jobs {a}"), 1),
            ("queue.pause".to_owned(), "queue default".to_owned(), 1),
            ("queue.resume".to_owned(), "queue default".to_owned(), 1),
        ],
        "{audit}"
    );
    assert!(
        audit["entries"][0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("admin (token) from "),
        "{audit}"
    );
}

async fn a_signed_in_admin_acts_only_with_the_csrf_header(engine: Engine) {
    let app = TestApp::start(engine, "admin_jobs_csrf", 5).await;
    let a = enqueue(&app, "email.send", false, 10).await;
    let mut visitor = Visitor::new(app.router.clone());
    let csrf = visitor.sign_in_admin(ADMIN_TOKEN).await;
    let body = json!({ "ids": [a.to_string()] }).to_string().into_bytes();
    let forged = visitor
        .post_with_headers(
            "/admin/api/jobs/delete",
            "application/json",
            body.clone(),
            &[],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.html);
    assert!(app.store.job(a).await.unwrap().is_some());
    let done = visitor
        .post_with_headers(
            "/admin/api/jobs/delete",
            "application/json",
            body,
            &[("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.html);
    assert!(app.store.job(a).await.unwrap().is_none());
}

/// Text no database column can hold, or a parameter given twice, is named in a `422` (a fuzzer's finds: the
/// first reached PostgreSQL as a 500).
async fn a_nul_character_or_a_repeated_parameter_is_refused(engine: Engine) {
    let app = TestApp::start(engine, "admin_jobs_nul", 5).await;
    let (status, body) =
        admin_get(&app, "/admin/api/jobs?q=a%00b&kind=%00", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["fields"]["q"].is_array() && body["fields"]["kind"].is_array(),
        "{body}"
    );
    let (status, body) =
        admin_get(&app, "/admin/api/jobs?limit=5&limit=6", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["fields"]["limit"][0]
            .as_str()
            .unwrap()
            .contains("more than once"),
        "{body}"
    );
    let (status, body) = post(
        &app,
        "/admin/api/jobs/retry",
        r#"{"filter": {"q": "a\u0000b"}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["fields"]["q"].is_array(), "{body}");
}

backend_tests!(
    a_nul_character_or_a_repeated_parameter_is_refused,
    the_queue_is_listed_filtered_and_paged,
    operators_act_on_jobs_and_queues,
    a_signed_in_admin_acts_only_with_the_csrf_header,
);
