//! Crash reports' retention, on both engines: a group counts every crash but keeps a few recent reports, and
//! old reports are pruned.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use skybook_storage::{CrashGroup, Engine, NewCrash, Store};
use skybook_testkit::backend_tests;

fn crash(fingerprint: &str, request_id: String) -> NewCrash {
    NewCrash {
        fingerprint: fingerprint.into(),
        message: "boom".into(),
        location: "src/lib.rs:1:1".into(),
        backtrace: "0: skybook::boom".into(),
        route: None,
        method: None,
        tenant: None,
        request_id: Some(request_id),
        task: None,
        release: "skybook test".into(),
    }
}

/// The request ids of the group's stored reports, newest first.
async fn stored_requests(store: &Store, fingerprint: &str) -> Vec<String> {
    let reports = store.crash_reports(fingerprint, 100).await.unwrap();
    reports.into_iter().filter_map(|r| r.request_id).collect()
}

async fn a_group_counts_every_crash_but_keeps_its_latest_reports(engine: Engine) {
    let store = skybook_testkit::store(engine, "crash_samples").await;
    let start = Utc::now() - Duration::hours(1);
    // Stored out of order, as reports may commit: the newest by time are kept, not the last stored.
    let mut minutes: Vec<i64> = (0..20).collect();
    minutes.swap(19, 3);
    for minute in minutes {
        let at = start + Duration::minutes(minute);
        store
            .record_crash(&crash("fp-hot", format!("r{minute:02}")), at)
            .await
            .unwrap();
    }
    store
        .record_crash(&crash("fp-other", "o1".into()), start)
        .await
        .unwrap();

    let groups = store.crash_groups(10).await.unwrap();
    let hot = groups.iter().find(|g| g.fingerprint == "fp-hot").unwrap();
    assert_eq!(hot.count, 20, "every crash is counted");
    assert_eq!(CrashGroup::SAMPLES_KEPT, 5);
    assert_eq!(
        stored_requests(&store, "fp-hot").await,
        ["r19", "r18", "r17", "r16", "r15"],
        "only the five latest reports are kept"
    );
    assert_eq!(
        stored_requests(&store, "fp-other").await,
        ["o1"],
        "another group's reports are untouched"
    );
}

async fn pruning_removes_reports_older_than_the_cutoff_only(engine: Engine) {
    let store = skybook_testkit::store(engine, "crash_prune").await;
    // Whole seconds, so the report stored at the cutoff is stored as exactly the cutoff on both engines
    // (PostgreSQL keeps microseconds).
    let now = Utc::now().trunc_subsecs(0);
    let record = |fingerprint: &'static str, request: &'static str, at: DateTime<Utc>| {
        let store = store.clone();
        async move {
            store
                .record_crash(&crash(fingerprint, request.into()), at)
                .await
                .unwrap()
        }
    };
    let cutoff = now - Duration::days(30);
    record("fp-a", "a-old", cutoff - Duration::days(3)).await;
    record("fp-a", "a-just-before", cutoff - Duration::seconds(1)).await;
    record("fp-a", "a-at-cutoff", cutoff).await;
    record("fp-a", "a-new", now).await;
    record("fp-b", "b-old", cutoff - Duration::days(1)).await;

    assert_eq!(store.prune_crash_reports(cutoff).await.unwrap(), 3);
    assert_eq!(
        stored_requests(&store, "fp-a").await,
        ["a-new", "a-at-cutoff"]
    );
    assert!(stored_requests(&store, "fp-b").await.is_empty());
    let groups = store.crash_groups(10).await.unwrap();
    let count = |fp: &str| groups.iter().find(|g| g.fingerprint == fp).map(|g| g.count);
    assert_eq!(
        (count("fp-a"), count("fp-b")),
        (Some(4), Some(1)),
        "groups and their counts outlive their reports"
    );
    assert_eq!(
        store.prune_crash_reports(cutoff).await.unwrap(),
        0,
        "nothing newer goes"
    );
}

backend_tests!(
    a_group_counts_every_crash_but_keeps_its_latest_reports,
    pruning_removes_reports_older_than_the_cutoff_only,
);
