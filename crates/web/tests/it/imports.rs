//! The importer's runs and rejects in the admin API: behind the admin token, filtered as asked, every bad
//! filter named.

use axum::http::StatusCode;
use chrono::Utc;
use skybook_domain::ImportRunId;
use skybook_storage::{Engine, ImportCounts, ImportOutcome, ImportReject, NewImportRun};
use skybook_testkit::backend_tests;

use crate::crashes::admin_get;
use crate::harness::{TestApp, ADMIN_TOKEN};

async fn import_runs_and_rejects_are_listed_for_the_admin(engine: Engine) {
    let app = TestApp::start(engine, "admin_imports", 5).await;
    let store = &app.store;
    let mut ids = Vec::new();
    for (feed, status) in [("flights", "succeeded"), ("airports", "failed")] {
        let run = NewImportRun {
            id: ImportRunId::new(),
            tenant_id: app.tenant.id,
            feed: feed.into(),
            source: format!("/data/{feed}.csv"),
            feed_date: None,
            dry_run: false,
        };
        store.start_import_run(&run, Utc::now()).await.unwrap();
        let reject = ImportReject {
            line: 7,
            column_name: Some("iata".into()),
            value: Some("X1".into()),
            reason: "does not match the pattern [A-Z]{3}".into(),
            raw: "X1,Nowhere,,ES,".into(),
        };
        store.add_import_rejects(run.id, &[reject]).await.unwrap();
        let outcome = ImportOutcome {
            status,
            counts: ImportCounts {
                read: 10,
                inserted: 9,
                rejected: 1,
                ..ImportCounts::default()
            },
            content_sha256: None,
            error: (status == "failed").then(|| "over budget".into()),
            header: Some("iata,name,city,country,timezone".into()),
        };
        store
            .finish_import_run(run.id, &outcome, Utc::now())
            .await
            .unwrap();
        ids.push(run.id);
    }

    let (status, _) = admin_get(&app, "/admin/api/imports", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = admin_get(&app, "/admin/api/imports", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["runs"].as_array().unwrap().len(), 2, "{body}");
    let (_, body) = admin_get(
        &app,
        "/admin/api/imports?status=failed&tenant=air",
        Some(ADMIN_TOKEN),
    )
    .await;
    let runs = body["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{body}");
    assert_eq!(
        (runs[0]["feed"].as_str(), runs[0]["tenant"].as_str()),
        (Some("airports"), Some("air"))
    );
    assert_eq!(runs[0]["rows"]["rejected"], 1);
    let (status, body) = admin_get(
        &app,
        "/admin/api/imports?status=lost&limit=0",
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["fields"]["status"].is_array() && body["fields"]["limit"].is_array(),
        "{body}"
    );

    let path = format!("/admin/api/imports/{}/rejects", ids[1]);
    let (status, body) = admin_get(&app, &path, Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["header"], "iata,name,city,country,timezone");
    assert_eq!(body["rejects"][0]["line"], 7);
    assert_eq!(body["rejects"][0]["raw"], "X1,Nowhere,,ES,");
    let (status, _) = admin_get(&app, &path, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for missing in [
        format!("/admin/api/imports/{}/rejects", ImportRunId::new()),
        "/admin/api/imports/nope/rejects".into(),
    ] {
        let (status, _) = admin_get(&app, &missing, Some(ADMIN_TOKEN)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    }
}

backend_tests!(import_runs_and_rejects_are_listed_for_the_admin);
