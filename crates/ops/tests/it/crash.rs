//! Panics outside requests: a spawned task's panic is stored by the process's background recorder.

use std::time::{Duration, Instant};

use skybook_ops::crash;
use skybook_storage::Engine;

/// One test per binary may own the process-wide recorder; this is it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_spawned_task_is_recorded_and_alerted() {
    let store = skybook_testkit::store(Engine::Sqlite, "crash_task").await;
    crash::install_panic_hook();
    crash::record_background_panics(store.clone());

    let task = tokio::spawn(async { panic!("settling booking 42 failed in a background task") });
    assert!(
        task.await.unwrap_err().is_panic(),
        "the task still panics as usual"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    let group = loop {
        if let Some(group) = store.crash_groups(10).await.unwrap().into_iter().next() {
            break group;
        }
        assert!(Instant::now() < deadline, "no crash recorded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(group.message.contains("background task"));
    assert_eq!(group.last_request_id, None);
    let report = &store.crash_reports(&group.fingerprint, 1).await.unwrap()[0];
    assert!(
        report.task.is_some() && report.route.is_none(),
        "{report:?}"
    );
    assert!(report.location.contains("crash.rs"), "{report:?}");
    let alerts = store.recent_alerts(10).await.unwrap();
    assert_eq!((alerts.len(), alerts[0].kind.as_str()), (1, "crash"));
}
