//! The job pages without JavaScript: the listing with each queue's counts, filtered; actions on selected jobs
//! and on every job matching the filter, and pausing a queue, each through a form with the CSRF token and back
//! to the listing saying what was done; a job's page with its payload and failed attempts.

use axum::http::StatusCode;
use chrono::{Duration, Utc};
use serde_json::json;
use skybook_domain::JobId;
use skybook_storage::{Engine, Enqueued, NewJob};
use skybook_testkit::backend_tests;

use crate::harness::{TestApp, ADMIN_TOKEN};
use crate::visitor::Visitor;

async fn enqueue(app: &TestApp, kind: &str, tenant: bool, seconds_ago: i64) -> JobId {
    let job = NewJob {
        queue: "default".into(),
        kind: kind.into(),
        payload: json!({ "feed": "flights", "kind": kind }).to_string(),
        priority: 0,
        max_attempts: 1,
        run_at: Utc::now() - Duration::seconds(1),
        unique_key: None,
        tenant_id: tenant.then_some(app.tenant.id),
    };
    match app
        .store
        .enqueue_job(&job, Utc::now() - Duration::seconds(seconds_ago))
        .await
        .unwrap()
    {
        Enqueued::New(id) => id,
        Enqueued::Duplicate => panic!("duplicate"),
    }
}

async fn signed_in(app: &TestApp) -> Visitor {
    let mut visitor = Visitor::new(app.router.clone());
    let gate = visitor.get("/admin/jobs").await;
    assert_eq!(
        gate.location.as_deref(),
        Some("/admin/login"),
        "signed out: to the sign-in"
    );
    visitor.sign_in_admin(ADMIN_TOKEN).await;
    visitor
}

async fn the_jobs_pages_list_filter_and_act_without_javascript(engine: Engine) {
    let app = TestApp::start(engine, "admin_jobs_pages", 5).await;
    let email = enqueue(&app, "email.send", false, 30).await;
    let first_import = enqueue(&app, "import.feed", true, 20).await;
    enqueue(&app, "import.feed", true, 10).await;
    let mut visitor = signed_in(&app).await;

    let page = visitor.get("/admin/jobs").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.html.contains("Every job matching this filter (3)"),
        "{}",
        page.main()
    );
    assert!(page.html.contains(&format!("/admin/jobs/{email}")));
    assert!(
        page.html.contains("<td>default</td><td>3</td><td>0</td>"),
        "{}",
        page.main()
    );
    let csrf = page.csrf();

    let filtered = visitor.get("/admin/jobs?kind=import.feed").await;
    assert!(
        filtered.html.contains("Every job matching this filter (2)"),
        "{}",
        filtered.main()
    );
    assert!(!filtered.html.contains(&format!("/admin/jobs/{email}")));

    // Cancel every job matching the filter: back to the filtered listing, saying how many.
    let done = visitor
        .post(
            "/admin/jobs/act",
            &[
                ("csrf", csrf.as_str()),
                ("scope", "matching"),
                ("kind", "import.feed"),
                ("action", "cancel"),
            ],
        )
        .await;
    assert_eq!(
        done.location.as_deref(),
        Some("/admin/jobs?kind=import.feed&done=cancel:2")
    );
    let after = visitor.follow(&done).await;
    assert!(
        after.html.contains("Cancelled: 2 job(s)."),
        "{}",
        after.main()
    );
    let job = app.store.job(first_import).await.unwrap().unwrap();
    assert_eq!(job.last_error.as_deref(), Some("cancelled by an operator"));

    // Delete the one selected.
    let id = email.to_string();
    let done = visitor
        .post(
            "/admin/jobs/act",
            &[
                ("csrf", csrf.as_str()),
                ("scope", "selected"),
                ("id", id.as_str()),
                ("action", "delete"),
            ],
        )
        .await;
    assert_eq!(done.location.as_deref(), Some("/admin/jobs?done=delete:1"));
    assert!(app.store.job(email).await.unwrap().is_none());

    // Without the token: refused, nothing done.
    let forged = visitor
        .post(
            "/admin/jobs/act",
            &[("scope", "matching"), ("action", "delete")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(app.store.job(first_import).await.unwrap().is_some());

    // Pause the queue: no claims; the listing says so and offers to resume.
    let paused = visitor
        .post(
            "/admin/queues",
            &[
                ("csrf", csrf.as_str()),
                ("queue", "default"),
                ("action", "pause"),
            ],
        )
        .await;
    let listing = visitor.follow(&paused).await;
    assert!(
        listing.html.contains("Paused queue default."),
        "{}",
        listing.main()
    );
    assert!(
        listing.html.contains("value=\"resume\""),
        "{}",
        listing.main()
    );
    let claims = app
        .store
        .claim_jobs("default", "w", Utc::now(), Duration::seconds(60), 10)
        .await
        .unwrap();
    assert!(claims.is_empty());
    let bad = visitor
        .post(
            "/admin/queues",
            &[
                ("csrf", csrf.as_str()),
                ("queue", ""),
                ("action", "explode"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A job's page: payload, failed attempts, and what it produced.
    app.store.resume_queue("default").await.unwrap();
    app.store
        .retry_jobs(
            &skybook_storage::JobSelection::Ids {
                ids: vec![first_import],
                tenant_id: None,
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let claimed = app
        .store
        .claim_jobs("default", "worker-7", Utc::now(), Duration::seconds(60), 10)
        .await
        .unwrap();
    assert!(claimed.iter().any(|j| j.id == first_import));
    app.store
        .fail_job(
            first_import,
            "worker-7",
            "the feed endpoint is unavailable",
            None,
            Utc::now(),
        )
        .await
        .unwrap();
    let detail = visitor.get(&format!("/admin/jobs/{first_import}")).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(
        detail.html.contains("the feed endpoint is unavailable"),
        "{}",
        detail.main()
    );
    assert!(detail.html.contains("worker-7"));
    assert!(
        detail.html.contains("&#34;feed&#34;: &#34;flights&#34;"),
        "{}",
        detail.main()
    );
    assert!(
        detail
            .html
            .contains("/admin/api/imports?tenant=air&#38;feed=flights"),
        "{}",
        detail.main()
    );
    let audit = app.store.audit_log(None, 10).await.unwrap();
    assert_eq!(audit[0].action, "queue.pause");
    assert!(
        audit[0].actor.starts_with("admin (session) from "),
        "{audit:?}"
    );
    let admin = visitor.get("/admin").await;
    assert!(
        admin
            .html
            .contains("<td>jobs.cancel</td><td>every job matching kind=import.feed</td><td>2</td>"),
        "{}",
        admin.main()
    );
    let missing = visitor.get(&format!("/admin/jobs/{}", JobId::new())).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

backend_tests!(the_jobs_pages_list_filter_and_act_without_javascript);
