//! Panics outside requests (stored by the process's background recorder) and in tasks a request spawned.

use std::time::{Duration, Instant};

use skybook_crash as crash;
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
    assert!(report.location.contains("tests/it/main.rs"), "{report:?}");
    let alerts = store.recent_alerts(None, 10).await.unwrap();
    assert_eq!((alerts.len(), alerts[0].kind.as_str()), (1, "crash"));
}

/// The booking pipeline runs on its own task; a panic there is still the request's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_task_a_request_spawned_is_filed_under_the_request() {
    crash::install_panic_hook();
    let context = crash::RequestContext {
        request_id: Some("req-spawned-123".into()),
        method: Some("POST".into()),
        route: Some("/api/v1/tenants/{tenant}/bookings".into()),
        tenant: Some("air".into()),
    };
    let joined = crash::in_request(context, async {
        tokio::spawn(crash::propagate(async { panic!("the pipeline blew up") })).await
    })
    .await;
    assert!(joined.unwrap_err().is_panic());
    let report = crash::take_request_panic("req-spawned-123").expect("filed under the request id");
    assert_eq!(
        (
            report.method.as_deref(),
            report.route.as_deref(),
            report.tenant.as_deref()
        ),
        (
            Some("POST"),
            Some("/api/v1/tenants/{tenant}/bookings"),
            Some("air")
        )
    );
    assert!(
        report.task.is_none() && report.message.contains("blew up"),
        "{report:?}"
    );
    assert!(
        crash::take_request_panic("req-spawned-123").is_none(),
        "taken once"
    );
}
