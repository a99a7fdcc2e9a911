//! Scheduled imports on two `skybook worker` processes sharing one database: each tick fetches the tenant's feed
//! from the partner's endpoint (the sandbox, over HTTP) once — never two runs at a time — loads it once, and the
//! same day's content again is `skipped`.

use std::time::{Duration, Instant};

use skybook_domain::TenantSlug;
use skybook_storage::{ImportRun, ImportRunFilter};
use skybook_testkit::process::{deployment, migrate, start_sandbox, Running};
use skybook_testkit::Engine;

const EXE: &str = env!("CARGO_BIN_EXE_skybook");

/// A database with tenant `air` subscribed to `feed`, and a feeds dir whose `feed` is the built-in declaration
/// with its `schedule` line made every two seconds, so a test can wait for its ticks.
struct Cron {
    dir: std::path::PathBuf,
    url: String,
    store: skybook_storage::Store,
    tenant: skybook_storage::Tenant,
    feeds_dir: std::path::PathBuf,
}

impl Cron {
    async fn setup(name: &str, feed: &str, schedule: &str) -> Self {
        let dir = skybook_testkit::test_dir(name);
        let url = skybook_testkit::fresh_database_url(Engine::Postgres, name).await;
        migrate(EXE, &url);
        let store = skybook_testkit::store_at(&url).await;
        let tenant = store
            .ensure_tenant(&TenantSlug::parse("air").unwrap(), "Air")
            .await
            .unwrap();
        store
            .subscribe_tenant_feed(tenant.id, feed, chrono::Utc::now())
            .await
            .unwrap();
        let feeds_dir = dir.join("feeds");
        std::fs::create_dir_all(&feeds_dir).unwrap();
        let file = format!("{feed}.toml");
        let declaration = skybook_import::declaration::BUILT_IN
            .iter()
            .find(|(name, _)| *name == file)
            .unwrap()
            .1
            .replace(schedule, "schedule = \"*/2 * * * * *\"");
        assert!(
            declaration.contains("*/2 * * * * *"),
            "{schedule} is not in {file}"
        );
        std::fs::write(feeds_dir.join(file), declaration).unwrap();
        Self {
            dir,
            url,
            store,
            tenant,
            feeds_dir,
        }
    }
}

/// `skybook worker` on `url`, fetching feeds from the sandbox, with the feed types of `feeds_dir`.
fn worker(url: &str, sandbox: &str, feeds_dir: &std::path::Path) -> std::process::Command {
    let mut cmd = deployment(EXE, "worker", url, sandbox);
    skybook_testkit::process::feeds_from(&mut cmd, sandbox);
    cmd.env("SKYBOOK_FEEDS_DIR", feeds_dir);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_import_each_tick_once_and_skip_the_same_content() {
    let Cron {
        dir,
        url,
        store,
        tenant,
        feeds_dir,
    } = Cron::setup("import_cron", "airports", "schedule = \"0 30 1 * * *\"").await;
    let (_sandbox, sandbox) = start_sandbox(EXE, &dir);
    let workers: Vec<Running> = (0..2)
        .map(|i| {
            let cmd = worker(&url, &sandbox, &feeds_dir);
            let worker = Running::start(cmd, &dir, &format!("worker-{i}"));
            worker.wait_for_line("background workers starting");
            worker
        })
        .collect();

    let filter = ImportRunFilter {
        tenant_id: Some(tenant.id),
        feed: Some("airports".into()),
        status: None,
        limit: 100,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let runs: Vec<ImportRun> = loop {
        let runs = store.import_runs(&filter).await.unwrap();
        if runs.iter().filter(|r| r.finished_at.is_some()).count() >= 3 {
            break runs;
        }
        assert!(Instant::now() < deadline, "three ticks never ran: {runs:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    drop(workers);

    let finished: Vec<&ImportRun> = runs.iter().filter(|r| r.finished_at.is_some()).collect();
    let succeeded = finished.iter().filter(|r| r.status == "succeeded").count();
    let skipped = finished.iter().filter(|r| r.status == "skipped").count();
    assert_eq!(succeeded, 1, "loaded once: {runs:?}");
    assert_eq!(
        succeeded + skipped,
        finished.len(),
        "every other tick found the same content: {runs:?}"
    );
    assert!(
        finished
            .iter()
            .all(|r| r.source.starts_with(&sandbox) && r.feed_date.is_some()),
        "{runs:?}"
    );
    // Never two runs at once (one job per tenant, feed and day).
    let mut spans: Vec<_> = finished
        .iter()
        .map(|r| (r.started_at.unwrap(), r.finished_at.unwrap()))
        .collect();
    spans.sort();
    for pair in spans.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "two runs overlapped: {pair:?}");
    }
    let airports = skybook_import::load_all(None)
        .unwrap()
        .into_iter()
        .find(|f| f.name() == "airports")
        .unwrap();
    let keys = store.feed_keys(&airports.table, tenant.id).await.unwrap();
    assert_eq!(keys.len(), 12, "the sandbox's airports: {keys:?}");
}

/// A worker SIGKILLed in the middle of loading a large feed: the feed's table (and the catalog) stay as they
/// were, the job is rescued by another worker once its lease lapses, and the import completes once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_killed_mid_load_changes_nothing_and_is_completed_once() {
    const ROWS: usize = 200_000;
    let Cron {
        dir,
        url,
        store,
        tenant,
        feeds_dir,
    } = Cron::setup("import_killed", "flights", "schedule = \"0 0 2 * * *\"").await;
    let (_sandbox, sandbox) = start_sandbox(EXE, &dir);
    skybook_testkit::process::sandbox_faults(
        &sandbox,
        serde_json::json!({"feed_query": format!("rows={ROWS}")}),
    )
    .await;
    let worker = |name: &str| {
        let mut cmd = worker(&url, &sandbox, &feeds_dir);
        cmd.env("SKYBOOK_JOB_LEASE", "3s");
        Running::start(cmd, &dir, name)
    };
    let feed = skybook_import::load_all(Some(&feeds_dir))
        .unwrap()
        .into_iter()
        .find(|f| f.name() == "flights")
        .unwrap();

    let mut first = worker("worker-killed");
    first.wait_for_line("import progress");
    first.kill();
    assert!(
        store
            .feed_keys(&feed.table, tenant.id)
            .await
            .unwrap()
            .is_empty(),
        "nothing of the killed load remains"
    );
    let catalog = skybook_storage::FlightSearch {
        limit: 10,
        ..Default::default()
    };
    assert!(
        store
            .search_flights(tenant.id, &catalog)
            .await
            .unwrap()
            .is_empty(),
        "nor in the catalog"
    );

    let _second = worker("worker-rescuer");
    let filter = ImportRunFilter {
        tenant_id: Some(tenant.id),
        feed: Some("flights".into()),
        status: None,
        limit: 100,
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    let runs = loop {
        let runs = store.import_runs(&filter).await.unwrap();
        if runs.iter().any(|r| r.status == "succeeded") {
            break runs;
        }
        assert!(
            Instant::now() < deadline,
            "the import was never completed: {runs:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let succeeded: Vec<&ImportRun> = runs.iter().filter(|r| r.status == "succeeded").collect();
    assert_eq!(succeeded.len(), 1, "{runs:?}");
    assert_eq!(succeeded[0].rows_inserted, ROWS as i64, "{runs:?}");
    let interrupted = runs
        .iter()
        .filter(|r| {
            r.error
                .as_deref()
                .is_some_and(|e| e.starts_with("interrupted"))
        })
        .count();
    assert_eq!(interrupted, 1, "the killed run is marked: {runs:?}");
    assert_eq!(
        store.feed_keys(&feed.table, tenant.id).await.unwrap().len(),
        ROWS,
        "applied once"
    );
}
