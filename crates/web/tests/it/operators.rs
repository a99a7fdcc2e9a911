//! Tenant operators in the admin: a tenant's operator token sees and acts on that tenant's jobs, runs, rows and
//! bookings only — through every admin route the router has, pages and JSON alike; a read-only token can act on
//! nothing; the platform's own pages are the platform admin's; each action is in the audit log, a tenant's
//! entries for its operators to read; a revoked token ends its sessions.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{Duration, Utc};
use serde_json::{json, Value};
use skybook_domain::{ImportRunId, JobId, OperatorToken};
use skybook_storage::{
    Engine, Enqueued, ImportCounts, ImportOutcome, NewImportRun, NewJob, Tenant,
};
use skybook_testkit::{backend_tests, fixtures};

use crate::harness::{TestApp, ADMIN_TOKEN};
use crate::visitor::Visitor;

/// What each tenant has: a job, an import run, a booking.
pub(crate) struct Things {
    pub tenant: Tenant,
    pub job: JobId,
    pub run: ImportRunId,
    pub reference: String,
}

pub(crate) async fn things(
    app: &TestApp,
    tenant: Tenant,
    flight: &skybook_domain::Flight,
) -> Things {
    let job = NewJob {
        queue: "default".into(),
        kind: "email.send".into(),
        payload: json!({ "for": tenant.slug.as_str() }).to_string(),
        priority: 0,
        max_attempts: 1,
        run_at: Utc::now() + Duration::hours(1),
        unique_key: None,
        tenant_id: Some(tenant.id),
    };
    let Enqueued::New(job) = app.store.enqueue_job(&job, Utc::now()).await.unwrap() else {
        panic!("a new job")
    };
    let run = NewImportRun {
        id: ImportRunId::new(),
        tenant_id: tenant.id,
        feed: "airports".into(),
        source: format!(
            "http://partner.example/{}/airports?date=2027-03-01",
            tenant.slug
        ),
        feed_date: chrono::NaiveDate::from_ymd_opt(2027, 3, 1),
        dry_run: false,
    };
    app.store.start_import_run(&run, Utc::now()).await.unwrap();
    let outcome = ImportOutcome {
        status: "succeeded",
        counts: ImportCounts::default(),
        content_sha256: None,
        error: None,
        header: None,
    };
    app.store
        .finish_import_run(run.id, &outcome, Utc::now())
        .await
        .unwrap();
    let booking = fixtures::confirmed_booking(
        &app.store,
        &tenant,
        flight,
        "Sea",
        &format!("ch_{}", tenant.slug),
    )
    .await;
    Things {
        tenant,
        job,
        run: run.id,
        reference: booking.reference.to_string(),
    }
}

/// `air` (the harness's tenant) and `sea`, each with its things.
pub(crate) async fn two_tenants(app: &TestApp) -> (Things, Things) {
    let air = things(app, app.tenant.clone(), &app.flight).await;
    let (sea_tenant, sea_flight) = fixtures::tenant_with_flight(&app.store, "sea", 5).await;
    let sea = things(app, sea_tenant, &sea_flight).await;
    (air, sea)
}

pub(crate) async fn token(app: &TestApp, tenant: &Tenant, read_only: bool) -> String {
    let token = OperatorToken::generate();
    app.store
        .create_operator_token(tenant.id, &token.hash(), read_only, Utc::now())
        .await
        .unwrap();
    token.expose().to_owned()
}

async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Value,
) -> (StatusCode, String) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, _, body) = app.request(request).await;
    (status, body)
}

async fn get_json(app: &TestApp, path: &str, token: &str) -> Value {
    let (status, body) = call(app, "GET", path, token, Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

async fn a_tenant_operator_sees_and_acts_on_its_own_tenant_only(engine: Engine) {
    let app = TestApp::start(engine, "operators_scope", 5).await;
    let (air, sea) = two_tenants(&app).await;
    let op = token(&app, &air.tenant, false).await;

    let jobs = get_json(&app, "/admin/api/jobs", &op).await;
    let ids: Vec<&str> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [air.job.to_string()], "only air's job: {jobs}");
    let counted: i64 = jobs["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_i64().unwrap())
        .sum();
    assert_eq!(counted, 1, "counts are air's too: {jobs}");
    let (status, body) = call(&app, "GET", "/admin/api/jobs?tenant=sea", &op, Value::Null).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("no tenant sea"), "{body}");
    let (status, _) = call(
        &app,
        "GET",
        &format!("/admin/api/jobs/{}", sea.job),
        &op,
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Acting: sea's job named by id is untouched; "every job" means every job of air's.
    let (status, body) = call(
        &app,
        "POST",
        "/admin/api/jobs/cancel",
        &op,
        json!({ "ids": [sea.job] }),
    )
    .await;
    assert_eq!(
        (
            status,
            serde_json::from_str::<Value>(&body).unwrap()["affected"].clone()
        ),
        (StatusCode::OK, json!(0))
    );
    let (status, body) = call(
        &app,
        "POST",
        "/admin/api/jobs/cancel",
        &op,
        json!({ "filter": {} }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["affected"], 1);
    assert_eq!(
        app.store.job(sea.job).await.unwrap().unwrap().state,
        "queued"
    );
    assert_eq!(
        app.store.job(air.job).await.unwrap().unwrap().state,
        "failed"
    );

    let runs = get_json(&app, "/admin/api/imports", &op).await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1, "{runs}");
    assert_eq!(runs["runs"][0]["id"], air.run.to_string());
    let (status, _) = call(
        &app,
        "GET",
        &format!("/admin/api/imports/{}", sea.run),
        &op,
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let own = get_json(
        &app,
        &format!("/admin/api/bookings/air/{}", air.reference),
        &op,
    )
    .await;
    assert_eq!(own["booking"]["reference"], air.reference.as_str());
    assert_eq!(
        own["emails"].as_array().unwrap().len(),
        1,
        "its confirmation email: {own}"
    );
    let (status, _) = call(
        &app,
        "GET",
        &format!("/admin/api/bookings/sea/{}", sea.reference),
        &op,
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let bookings = get_json(&app, "/admin/api/data/bookings", &op).await;
    let refs: Vec<&str> = bookings["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reference"].as_str().unwrap())
        .collect();
    assert_eq!(refs, [air.reference.as_str()], "{bookings}");

    // The platform's pages are the platform admin's.
    for path in ["/admin/api/cron", "/admin/api/crashes"] {
        let (status, _) = call(&app, "GET", path, &op, Value::Null).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    let (status, _) = call(
        &app,
        "POST",
        "/admin/api/queues/default/pause",
        &op,
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(app.store.paused_queues().await.unwrap().is_empty());

    // The audit log: air's operator reads air's entries; the platform admin reads them all.
    let (status, _) = call(
        &app,
        "POST",
        "/admin/api/jobs/retry",
        ADMIN_TOKEN,
        json!({ "ids": [sea.job] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mine = get_json(&app, "/admin/api/audit", &op).await;
    let actions: Vec<&str> = mine["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["jobs.cancel", "jobs.cancel"], "{mine}");
    assert!(
        mine["entries"][0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("operator "),
        "{mine}"
    );
    assert_eq!(mine["entries"][0]["tenant_id"], air.tenant.id.to_string());
    let all = get_json(&app, "/admin/api/audit", ADMIN_TOKEN).await;
    assert_eq!(all["entries"].as_array().unwrap().len(), 3, "{all}");
    assert_eq!(all["entries"][0]["action"], "jobs.retry");
    assert_eq!(all["entries"][0]["tenant_id"], Value::Null);
}

/// Fills a route's parameters with `sea`'s things (or, for the platform's, plausible names).
pub(crate) fn fill(path: &str, things: &Things) -> String {
    path.replace("{job}", &things.job.to_string())
        .replace("{run}", &things.run.to_string())
        .replace("{tenant}", things.tenant.slug.as_str())
        .replace("{reference}", &things.reference)
        .replace("{table}", "bookings")
        .replace("{queue}", "default")
        .replace("{name}", "sentinel")
        .replace("{action}", "retry")
}

async fn no_admin_route_shows_or_touches_another_tenants_things(engine: Engine) {
    let app = TestApp::start(engine, "operators_routes", 5).await;
    let (air, sea) = two_tenants(&app).await;
    let op = token(&app, &air.tenant, false).await;
    let read_only = token(&app, &air.tenant, true).await;
    let admin_paths: Vec<&str> = app
        .route_paths()
        .into_iter()
        .filter(|p| p.starts_with("/admin"))
        .collect();
    assert!(
        admin_paths.len() >= 25,
        "every admin route: {admin_paths:?}"
    );
    let secrets = [
        sea.job.to_string(),
        sea.run.to_string(),
        sea.reference.clone(),
        "ch_sea".to_owned(),
    ];
    let job_state =
        |job: skybook_storage::Job| (job.state, job.attempts, job.run_at, job.last_error);
    let before = job_state(app.store.job(sea.job).await.unwrap().unwrap());
    for path in &admin_paths {
        if *path == "/admin/events" {
            // A stream that never ends; its filtering is tested in `events`.
            continue;
        }
        let url = fill(path, &sea);
        for method in ["GET", "POST"] {
            let body = match path.contains("/jobs/") {
                true => json!({ "ids": [sea.job] }),
                false => json!({}),
            };
            let (status, text) = call(&app, method, &url, &op, body).await;
            assert!(!status.is_server_error(), "{method} {url}: {status} {text}");
            for secret in &secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "{method} {url} shows sea's {secret}: {text}"
                );
            }
            // A route naming one of sea's things finds nothing, or is not the operator's.
            if path.contains('{') && !path.contains("{table}") && !path.contains("{queue}") {
                assert!(
                    [
                        StatusCode::NOT_FOUND,
                        StatusCode::FORBIDDEN,
                        StatusCode::METHOD_NOT_ALLOWED,
                        StatusCode::OK
                    ]
                    .contains(&status),
                    "{method} {url}: {status} {text}"
                );
                if status == StatusCode::OK {
                    // Only an action on a list of ids answers 200 — having touched none of them.
                    assert_eq!(
                        serde_json::from_str::<Value>(&text).unwrap()["affected"],
                        0,
                        "{method} {url}"
                    );
                }
            }
            // A read-only token acts on nothing at all, its own tenant's things included.
            if method == "POST" && !path.starts_with("/admin/login") {
                let url = fill(path, &air);
                let (status, text) =
                    call(&app, method, &url, &read_only, json!({ "ids": [air.job] })).await;
                assert!(
                    [StatusCode::FORBIDDEN, StatusCode::METHOD_NOT_ALLOWED].contains(&status),
                    "read-only {method} {url}: {status} {text}"
                );
            }
        }
        // Without a token, nothing: the JSON is a 401, a page sends to the sign-in form, a form is refused.
        let (status, headers, _) = app
            .request(Request::get(fill(path, &air)).body(Body::empty()).unwrap())
            .await;
        let location = headers.get("location").and_then(|l| l.to_str().ok());
        match *path {
            "/admin/login" => assert_eq!(status, StatusCode::OK),
            p if p.starts_with("/admin/api/") || p == "/admin/events" || p.ends_with(".csv") => {
                let status = match status {
                    // An action: asked as it is meant to be.
                    StatusCode::METHOD_NOT_ALLOWED => {
                        let post = Request::post(fill(path, &air))
                            .body(Body::from("{}"))
                            .unwrap();
                        app.request(post).await.0
                    }
                    status => status,
                };
                assert_eq!(status, StatusCode::UNAUTHORIZED, "anonymous {path}");
            }
            "/admin/logout" | "/admin/jobs/act" | "/admin/queues" => {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "anonymous GET {path}"
                );
            }
            p if p.ends_with("/rerun") => assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED),
            _ => assert_eq!(
                (status, location),
                (StatusCode::SEE_OTHER, Some("/admin/login")),
                "anonymous GET {path}"
            ),
        }
    }
    // The actions by name, on sea's job: none touches it.
    for action in ["retry", "cancel", "delete"] {
        let (status, body) = call(
            &app,
            "POST",
            &format!("/admin/api/jobs/{action}"),
            &op,
            json!({ "ids": [sea.job] }),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["affected"],
            0,
            "{action}"
        );
    }
    assert_eq!(
        job_state(app.store.job(sea.job).await.unwrap().unwrap()),
        before,
        "sea's job untouched"
    );
    assert_eq!(
        app.store.job(air.job).await.unwrap().unwrap().state,
        "queued",
        "the read-only token changed nothing"
    );
    assert!(app.store.paused_queues().await.unwrap().is_empty());
}

async fn an_operator_signs_in_with_its_token_and_revoking_it_ends_the_session(engine: Engine) {
    let app = TestApp::start(engine, "operators_session", 5).await;
    let (air, sea) = two_tenants(&app).await;
    let token = OperatorToken::generate();
    let id = app
        .store
        .create_operator_token(air.tenant.id, &token.hash(), true, Utc::now())
        .await
        .unwrap();
    let mut visitor = Visitor::new(app.router.clone());
    visitor.sign_in_admin(token.expose()).await;
    let jobs = visitor.get("/admin/jobs").await;
    assert_eq!(jobs.status, StatusCode::OK);
    assert!(
        jobs.html.contains("tenant operator (read-only)"),
        "{}",
        jobs.main()
    );
    assert!(jobs.main().contains(&air.job.to_string()));
    assert!(!jobs.main().contains(&sea.job.to_string()));
    assert!(
        !jobs.main().contains("Retry all"),
        "no actions offered to a read-only operator"
    );
    assert!(
        !jobs.html.contains("href=\"/admin/cron\""),
        "no cron link for a tenant operator"
    );
    assert_eq!(
        visitor.get("/admin/cron").await.status,
        StatusCode::FORBIDDEN
    );
    let csrf = visitor.get("/admin/jobs").await.csrf();
    let act = visitor
        .post(
            "/admin/jobs/act",
            &[("csrf", &csrf), ("scope", "matching"), ("action", "cancel")],
        )
        .await;
    assert_eq!(act.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.store.job(air.job).await.unwrap().unwrap().state,
        "queued"
    );

    assert!(app
        .store
        .revoke_operator_token(id, Utc::now())
        .await
        .unwrap());
    assert_eq!(
        visitor.get("/admin/jobs").await.location.as_deref(),
        Some("/admin/login")
    );
    let (status, _) = call(&app, "GET", "/admin/api/jobs", token.expose(), Value::Null).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A wrong token is refused as before.
    let login = visitor.get("/admin/login").await;
    let refused = visitor
        .post(
            "/admin/login",
            &[("csrf", &login.csrf()), ("token", token.expose())],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
}

backend_tests!(
    a_tenant_operator_sees_and_acts_on_its_own_tenant_only,
    no_admin_route_shows_or_touches_another_tenants_things,
    an_operator_signs_in_with_its_token_and_revoking_it_ends_the_session,
);
