//! The import jobs in-process, against a real sandbox over HTTP and both databases: what a tick enqueues, the
//! progress an import publishes, and what the queue does with a feed endpoint that is down or refuses.

use chrono::{NaiveDate, Utc};
use secrecy::SecretString;
use serde_json::{json, Value};
use skybook_clients::ClientCredentials;
use skybook_domain::TenantSlug;
use skybook_sandbox::{RunningSandbox, SandboxConfig};
use skybook_storage::{ImportRun, ImportRunFilter, NewJob, Store, Tenant};
use skybook_testkit::{backend_tests, Engine};
use skybook_worker::{JobEvent, QueueWorker, QueueWorkerConfig};

use super::{ready, register, FEED_JOB, SCHEDULE_JOB};
use crate::wiring;
use skybook_import::FeedJob;

struct Setup {
    store: Store,
    sandbox: RunningSandbox,
    _dir: tempfile::TempDir,
    tenant: Tenant,
    worker: QueueWorker,
}

/// A store, a sandbox, tenant `acme` subscribed to `flights`, and a queue worker running the import jobs
/// (retrying a failed job at once, so a test need not wait out the backoff).
async fn setup(engine: Engine, name: &str) -> Setup {
    let store = skybook_testkit::store(engine, name).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let sandbox = skybook_sandbox::spawn(
        SandboxConfig::new(dir.path()),
        "127.0.0.1:0".parse().expect("address"),
    )
    .await
    .expect("sandbox");
    let base = url::Url::parse(&sandbox.url()).expect("sandbox url");
    let credentials = ClientCredentials {
        token_url: base.join("/oauth/token").expect("token url"),
        client_id: SandboxConfig::DEFAULT_CLIENT_ID.into(),
        client_secret: SecretString::from(SandboxConfig::DEFAULT_CLIENT_SECRET),
        scope: None,
        audience: None,
        extra_params: Vec::new(),
    };
    let client = wiring::feed_client(base, Some(credentials)).expect("feed client");
    let imports = ready(&store, None, Some(client)).await.expect("feed types");
    let tenant = store
        .ensure_tenant(&TenantSlug::parse("acme").expect("slug"), "Acme")
        .await
        .expect("tenant");
    store
        .subscribe_tenant_feed(tenant.id, "flights", Utc::now())
        .await
        .expect("subscribe");
    let mut config = QueueWorkerConfig::default();
    config.retry.initial_delay = std::time::Duration::ZERO;
    let worker = register(QueueWorker::new(store.clone(), config), &store, &imports);
    Setup {
        store,
        sandbox,
        _dir: dir,
        tenant,
        worker,
    }
}

impl Setup {
    async fn sandbox(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request =
            reqwest::Client::new().request(method, format!("{}{path}", self.sandbox.url()));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("sandbox request");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.expect("sandbox json")
    }

    async fn faults(&self, faults: Value) {
        self.sandbox(reqwest::Method::POST, "/sandbox/faults", Some(faults))
            .await;
    }

    async fn feed_requests(&self) -> u64 {
        self.sandbox(reqwest::Method::GET, "/sandbox/stats", None)
            .await["feed_requests"]
            .as_u64()
            .expect("feed_requests")
    }

    async fn enqueue(&self, kind: &str, payload: String) -> skybook_domain::JobId {
        let job = NewJob {
            queue: "default".into(),
            kind: kind.into(),
            payload,
            priority: 0,
            max_attempts: 3,
            run_at: Utc::now(),
            unique_key: None,
            tenant_id: None,
        };
        match self
            .store
            .enqueue_job(&job, Utc::now())
            .await
            .expect("enqueue")
        {
            skybook_storage::Enqueued::New(id) => id,
            other => panic!("not enqueued: {other:?}"),
        }
    }

    /// An `import.feed` job for acme's flights of `date`.
    async fn enqueue_import(&self, date: NaiveDate) -> skybook_domain::JobId {
        let payload = FeedJob {
            tenant: self.tenant.id,
            feed: "flights".into(),
            date,
        };
        self.enqueue(FEED_JOB, serde_json::to_string(&payload).expect("payload"))
            .await
    }

    async fn runs(&self) -> Vec<ImportRun> {
        let filter = ImportRunFilter {
            tenant_id: Some(self.tenant.id),
            feed: Some("flights".into()),
            status: None,
            limit: 10,
        };
        self.store.import_runs(&filter).await.expect("runs")
    }

    async fn job_state(&self, id: skybook_domain::JobId) -> (String, Option<String>) {
        let job = self.store.job(id).await.expect("job").expect("job exists");
        (job.state, job.last_error)
    }
}

fn date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 5, 1).expect("date")
}

async fn a_tick_imports_each_subscriber_once_and_publishes_progress(engine: Engine) {
    let s = setup(engine, "import_job_progress").await;
    s.faults(json!({ "feed_query": "rows=20000" })).await;
    let mut events = s.worker.events();
    // The tick: one job for the feed, which enqueues one import per subscribed tenant for the tick's day.
    let tick = s
        .enqueue(SCHEDULE_JOB, json!({ "feed": "flights" }).to_string())
        .await;
    assert_eq!(s.worker.run_once().await.expect("tick"), 1);
    assert_eq!(s.job_state(tick).await.0, "done");
    assert_eq!(
        s.worker.run_once().await.expect("import"),
        1,
        "one tenant subscribed: one import"
    );
    assert_eq!(s.worker.run_once().await.expect("nothing left"), 0);

    let runs = s.runs().await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = &runs[0];
    assert_eq!(run.status, "succeeded", "{run:?}");
    assert_eq!(run.rows_read, 20_000);
    assert_eq!(
        run.feed_date,
        Some(Utc::now().date_naive()),
        "the tick's day"
    );

    let mut progress = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let JobEvent::Progress {
            kind, progress: p, ..
        } = event
        {
            assert_eq!(kind, FEED_JOB);
            progress.push(p);
        }
    }
    let (last, during) = progress.split_last().expect("progress was published");
    assert!(!during.is_empty(), "progress while it ran: {progress:?}");
    for p in during {
        assert_eq!(p["done"], false);
        assert_eq!(p["tenant"], "acme");
        assert_eq!(p["feed"], "flights");
        assert!(p["rows"].as_u64().expect("rows") <= 20_000, "{p}");
    }
    assert_eq!(last["done"], true);
    assert_eq!(last["rows"], 20_000);
    assert_eq!(last["status"], "succeeded");
    assert_eq!(last["run"], run.id.to_string());
    assert_eq!(last["bytes"].as_i64(), Some(run.bytes));
}

async fn a_feed_endpoint_that_is_down_fails_the_job_for_a_retry(engine: Engine) {
    let s = setup(engine, "import_job_down").await;
    s.faults(json!({ "fail_next_feeds": 1000 })).await;
    let job = s.enqueue_import(date()).await;
    assert_eq!(s.worker.run_once().await.expect("run"), 1);
    let (state, error) = s.job_state(job).await;
    assert_eq!(state, "queued", "retried later");
    assert!(
        error.as_deref().unwrap_or_default().contains("unavailable"),
        "{error:?}"
    );
    let asked = s.feed_requests().await;
    assert!(
        asked > 1,
        "the client retried within the attempt: {asked} requests"
    );
    assert!(
        s.runs().await.is_empty(),
        "nothing fetched: no run recorded"
    );

    // The partner is back: the job's next attempt imports the file.
    s.faults(json!({ "fail_next_feeds": 0 })).await;
    assert_eq!(s.worker.run_once().await.expect("retry"), 1);
    assert_eq!(s.job_state(job).await.0, "done");
    let runs = s.runs().await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, "succeeded", "{:?}", runs[0]);
}

async fn a_refused_feed_is_a_failed_run_and_is_not_retried(engine: Engine) {
    let s = setup(engine, "import_job_refused").await;
    s.faults(json!({ "feed_query": "fault=status_404" })).await;
    let job = s.enqueue_import(date()).await;
    assert_eq!(s.worker.run_once().await.expect("run"), 1);
    assert_eq!(
        s.job_state(job).await.0,
        "done",
        "a refusal is the partner's answer"
    );
    assert_eq!(s.feed_requests().await, 1, "asked once");
    let runs = s.runs().await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, "failed");
    let error = runs[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("HTTP 404"), "{error}");
    assert_eq!(runs[0].feed_date, Some(date()));
    assert_eq!(s.worker.run_once().await.expect("nothing left"), 0);
}

backend_tests!(
    a_tick_imports_each_subscriber_once_and_publishes_progress,
    a_feed_endpoint_that_is_down_fails_the_job_for_a_retry,
    a_refused_feed_is_a_failed_run_and_is_not_retried,
);
