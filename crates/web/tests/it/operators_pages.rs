//! The admin's pages for tenant operators and without JavaScript: every page the router has renders the current
//! state from the server alone, and a tenant operator's forms (a session, its CSRF token) touch its own tenant's
//! things only, each action in the audit log.

use axum::http::StatusCode;
use skybook_storage::Engine;
use skybook_testkit::backend_tests;

use crate::harness::{TestApp, ADMIN_TOKEN};
use crate::operators::{fill, token, two_tenants};
use crate::visitor::Visitor;

/// Every admin page the router has, read as a browser without JavaScript reads it: rendered by the server with
/// the current state (what each item page is about is on it).
async fn every_admin_page_renders_its_state_without_javascript(engine: Engine) {
    let app = TestApp::start(engine, "operators_pages", 5).await;
    let (air, _) = two_tenants(&app).await;
    let mut visitor = Visitor::new(app.router.clone());
    visitor.sign_in_admin(ADMIN_TOKEN).await;
    let pages: Vec<&str> = app
        .route_paths()
        .into_iter()
        .filter(|p| p.starts_with("/admin") && !p.starts_with("/admin/api") && !p.ends_with(".csv"))
        .filter(|p| {
            ![
                "/admin/events",
                "/admin/logout",
                "/admin/jobs/act",
                "/admin/queues",
            ]
            .contains(p)
        })
        .filter(|p| !p.ends_with("/rerun"))
        .collect();
    assert!(pages.len() >= 10, "{pages:?}");
    for path in pages {
        let url = fill(path, &air);
        let mut page = visitor.get(&url).await;
        if page.status == StatusCode::SEE_OTHER {
            // `/admin/login` for one signed in, `/admin/data` to its first table.
            page = visitor.follow(&page).await;
        }
        assert_eq!(page.status, StatusCode::OK, "{url}: {}", page.html);
        assert!(page.html.contains("<main id=\"main\""), "{url}");
        if path == "/admin/jobs" {
            assert!(
                page.main().contains("<svg class=\"chart\""),
                "the last hour's chart"
            );
        }
        let about = if path.contains("{job}") {
            Some(air.job.to_string())
        } else if path.contains("{run}") {
            Some(air.run.to_string())
        } else if path.contains("{reference}") || path.contains("{table}") {
            Some(air.reference.clone())
        } else {
            None
        };
        if let Some(about) = about {
            assert!(
                page.main().contains(&about),
                "{url} shows {about}: {}",
                page.main()
            );
        }
    }
}

/// The forms, signed in with a session and its CSRF token: a tenant operator's selection or filter touches its own
/// tenant's jobs only, and another tenant's run is not there to re-run.
async fn a_tenant_operators_forms_touch_its_own_tenant_only(engine: Engine) {
    let app = TestApp::start(engine, "operators_forms", 5).await;
    let (air, sea) = two_tenants(&app).await;
    let mut visitor = Visitor::new(app.router.clone());
    let csrf = visitor
        .sign_in_admin(&token(&app, &air.tenant, false).await)
        .await;
    let sea_job = sea.job.to_string();
    let delete = visitor
        .post(
            "/admin/jobs/act",
            &[
                ("csrf", &csrf),
                ("scope", "selected"),
                ("id", &sea_job),
                ("action", "delete"),
            ],
        )
        .await;
    assert_eq!(
        delete.location.as_deref(),
        Some("/admin/jobs?done=delete:0")
    );
    let cancel = visitor
        .post(
            "/admin/jobs/act",
            &[("csrf", &csrf), ("scope", "matching"), ("action", "cancel")],
        )
        .await;
    assert_eq!(
        cancel.location.as_deref(),
        Some("/admin/jobs?done=cancel:1")
    );
    assert_eq!(
        app.store.job(sea.job).await.unwrap().unwrap().state,
        "queued"
    );
    assert_eq!(
        app.store.job(air.job).await.unwrap().unwrap().state,
        "failed"
    );
    let rerun = visitor
        .post(
            &format!("/admin/imports/{}/rerun", sea.run),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(rerun.status, StatusCode::NOT_FOUND);
    let queue = visitor
        .post(
            "/admin/queues",
            &[("csrf", &csrf), ("queue", "default"), ("action", "pause")],
        )
        .await;
    assert_eq!(queue.status, StatusCode::FORBIDDEN);
    // Each action in the audit log, the platform admin's reading of it included.
    let audit = app.store.audit_log(Some(air.tenant.id), 10).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["jobs.cancel", "jobs.delete"]);
    assert!(app
        .store
        .audit_log(Some(sea.tenant.id), 10)
        .await
        .unwrap()
        .is_empty());
}

backend_tests!(
    every_admin_page_renders_its_state_without_javascript,
    a_tenant_operators_forms_touch_its_own_tenant_only,
);
