//! The importer's pages without JavaScript: runs listed and filtered; a run's page with its rejects and the
//! CSV to fix and re-send; a fetched day queued again (once, however often asked), an uploaded file not.

use axum::http::StatusCode;
use chrono::{NaiveDate, Utc};
use skybook_domain::ImportRunId;
use skybook_storage::{Engine, ImportCounts, ImportOutcome, ImportReject, NewImportRun};
use skybook_testkit::backend_tests;

use crate::harness::{TestApp, ADMIN_TOKEN};
use crate::visitor::Visitor;

async fn run(
    app: &TestApp,
    source: &str,
    date: Option<NaiveDate>,
    rejects: &[ImportReject],
) -> ImportRunId {
    let run = NewImportRun {
        id: ImportRunId::new(),
        tenant_id: app.tenant.id,
        feed: "airports".into(),
        source: source.into(),
        feed_date: date,
        dry_run: false,
    };
    app.store.start_import_run(&run, Utc::now()).await.unwrap();
    app.store.add_import_rejects(run.id, rejects).await.unwrap();
    let outcome = ImportOutcome {
        status: if rejects.is_empty() {
            "succeeded"
        } else {
            "failed"
        },
        counts: ImportCounts {
            read: 4,
            inserted: 4 - rejects.len() as u64,
            rejected: rejects.len() as u64,
            ..ImportCounts::default()
        },
        content_sha256: None,
        error: (!rejects.is_empty()).then(|| "over budget".into()),
        header: Some("iata,name,city,country,timezone".into()),
    };
    app.store
        .finish_import_run(run.id, &outcome, Utc::now())
        .await
        .unwrap();
    run.id
}

async fn the_import_pages_show_runs_rejects_and_rerun_a_day(engine: Engine) {
    let app = TestApp::start(engine, "admin_imports_pages", 5).await;
    let day = NaiveDate::from_ymd_opt(2027, 3, 1).unwrap();
    let bad = ImportReject {
        line: 3,
        column_name: Some("iata".into()),
        value: Some("x1".into()),
        reason: "does not match the pattern [A-Z]{3}".into(),
        raw: "x1,Nowhere,,ES,".into(),
    };
    let fetched = run(
        &app,
        "http://partner.example/feeds/air/airports?date=2027-03-01",
        Some(day),
        &[bad],
    )
    .await;
    let uploaded = run(&app, "upload: airports.csv", None, &[]).await;

    let mut visitor = Visitor::new(app.router.clone());
    assert_eq!(
        visitor.get("/admin/imports").await.location.as_deref(),
        Some("/admin/login")
    );
    visitor.sign_in_admin(ADMIN_TOKEN).await;

    let list = visitor.get("/admin/imports").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.html.contains(&format!("/admin/imports/{fetched}"))
            && list.html.contains(&format!("/admin/imports/{uploaded}"))
    );
    let failed = visitor.get("/admin/imports?status=failed&tenant=air").await;
    assert!(failed.html.contains(&format!("/admin/imports/{fetched}")));
    assert!(
        !failed.html.contains(&format!("/admin/imports/{uploaded}")),
        "{}",
        failed.main()
    );
    assert_eq!(
        visitor.get("/admin/imports?status=lost").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    let page = visitor.get(&format!("/admin/imports/{fetched}")).await;
    assert!(
        page.html.contains("<td>3</td><td>iata</td><td>x1</td>"),
        "{}",
        page.main()
    );
    assert!(page.html.contains("x1,Nowhere,,ES,"));
    let csv = visitor
        .get(&format!("/admin/imports/{fetched}/rejects.csv"))
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(
        csv.html,
        "iata,name,city,country,timezone\nx1,Nowhere,,ES,\n"
    );

    // The fetched day again: one import job, however often asked; an upload cannot be fetched again.
    let csrf = page.csrf();
    let again = visitor
        .post(
            &format!("/admin/imports/{fetched}/rerun"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(again.location.as_deref(), Some("/admin/imports?done=rerun"));
    let twice = visitor
        .post(
            &format!("/admin/imports/{fetched}/rerun"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(
        twice.location.as_deref(),
        Some("/admin/imports?done=queued-already")
    );
    assert_eq!(
        app.store.job_counts("import.feed").await.unwrap(),
        [("queued".to_owned(), 1)]
    );
    let upload = visitor
        .post(
            &format!("/admin/imports/{uploaded}/rerun"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(upload.status, StatusCode::UNPROCESSABLE_ENTITY);
    let forged = visitor
        .post(&format!("/admin/imports/{fetched}/rerun"), &[])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}

backend_tests!(the_import_pages_show_runs_rejects_and_rerun_a_day);
