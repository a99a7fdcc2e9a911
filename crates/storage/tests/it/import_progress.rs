//! A running import's rows so far, for the admin: written as it goes on PostgreSQL; on SQLite (whose one writer
//! the load holds) left for the end. Only a running run's record moves.

use chrono::Utc;
use skybook_domain::{ImportRunId, TenantSlug};
use skybook_storage::{Engine, ImportCounts, ImportOutcome, NewImportRun};
use skybook_testkit::backend_tests;

async fn a_running_imports_progress_is_recorded(engine: Engine) {
    let store = skybook_testkit::store(engine, "import_progress").await;
    let tenant = store
        .ensure_tenant(&TenantSlug::parse("acme").unwrap(), "Acme")
        .await
        .unwrap();
    let run = NewImportRun {
        id: ImportRunId::new(),
        tenant_id: tenant.id,
        feed: "flights".into(),
        source: "flights.csv".into(),
        feed_date: None,
        dry_run: false,
    };
    store.start_import_run(&run, Utc::now()).await.unwrap();
    store
        .record_import_progress(run.id, 500, 4_000, 10_000)
        .await
        .unwrap();
    let running = store.import_run(run.id).await.unwrap().unwrap();
    match engine {
        Engine::Postgres => assert_eq!(
            (running.rows_read, running.bytes, running.bytes_total),
            (500, 4_000, Some(10_000))
        ),
        Engine::Sqlite => assert_eq!(
            (running.rows_read, running.bytes_total),
            (0, None),
            "left for the end"
        ),
    }
    let outcome = ImportOutcome {
        status: "succeeded",
        counts: ImportCounts {
            read: 900,
            ..ImportCounts::default()
        },
        content_sha256: None,
        error: None,
        header: None,
    };
    store
        .finish_import_run(run.id, &outcome, Utc::now())
        .await
        .unwrap();
    store
        .record_import_progress(run.id, 1, 8, 10_000)
        .await
        .unwrap();
    assert_eq!(
        store.import_run(run.id).await.unwrap().unwrap().rows_read,
        900,
        "a finished run keeps its count"
    );
}

backend_tests!(a_running_imports_progress_is_recorded);
