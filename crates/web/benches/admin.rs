//! The admin at scale (`scripts/bench-admin`): with `ROWS` jobs (default 1,000,000) and as many rows in a feed's
//! table, how long the jobs page, the jobs API's first and a deep page, and the data browser's first and a deep
//! page take (p50 and p95 over `SAMPLES` requests, default 40, through the router in-process); and what 100 idle
//! event streams cost the server in CPU. Prints each figure beside its target. PostgreSQL (`DATABASE_URL`).
//! A benchmark, not a test: it does nothing unless run with `--bench`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use skybook_booking::PipelineConfig;
use skybook_storage::{PoolSettings, Store};
use skybook_web::site::{SessionOptions, SiteOptions};
use skybook_web::{AppState, WebOptions};
use tower::ServiceExt;

const TOKEN: &str = "bench-admin-token-000000000000001";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn sql(url: &str, sql: &str) {
    skybook_testkit::execute_outside(url, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// p50 and p95 of `samples` GETs of `path`, in milliseconds.
async fn time(router: &axum::Router, path: &str, samples: usize) -> (f64, f64) {
    let mut ms = Vec::with_capacity(samples);
    for i in 0..samples + 3 {
        let request = Request::get(path)
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("accept", "text/html")
            .body(Body::empty())
            .unwrap();
        let started = Instant::now();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        assert!(
            status.is_success(),
            "{path}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        // The first few warm the caches, as an operator's first look does once.
        if i >= 3 {
            ms.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
    (at(0.5), at(0.95))
}

/// This process's CPU time so far (user + system), from /proc.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / 100.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL (PostgreSQL)");
    let rows = env("ROWS", 1_000_000);
    let samples = env("SAMPLES", 40) as usize;
    let store = Store::connect(
        &url,
        &PoolSettings {
            max_connections: 16,
            ..PoolSettings::default()
        },
    )
    .await
    .expect("connect");
    store.migrate().await.expect("migrate");
    let slug = skybook_domain::TenantSlug::parse("bench").unwrap();
    let tenant = match store.create_tenant(&slug, "Bench").await.unwrap() {
        Some(t) => t,
        None => store.tenant_by_slug(&slug).await.unwrap().unwrap(),
    };
    let feed =
        skybook_import::declaration::parse("points.toml", skybook_testkit::fixtures::POINTS_FEED)
            .unwrap();
    store.ensure_feed_table(&feed.table).await.unwrap();

    let seeding = Instant::now();
    sql(&url, "TRUNCATE jobs CASCADE").await;
    sql(&url, &format!(
        "INSERT INTO jobs (id, queue, kind, payload, priority, state, attempts, max_attempts, run_at, last_error, \
         tenant_id, created_at, finished_at) \
         SELECT gen_random_uuid(), 'default', (ARRAY['sentinel', 'import.feed', 'email.send'])[1 + i % 3], \
         '{{\"n\": ' || i || '}}', 0, CASE WHEN i % 50 = 1 THEN 'queued' WHEN i % 10 = 0 THEN 'failed' ELSE 'done' END, \
         1, 3, now() - make_interval(secs => i), CASE WHEN i % 10 = 0 THEN 'boom ' || i END, \
         CASE WHEN i % 2 = 0 THEN '{tenant}'::uuid END, now() - make_interval(secs => i), \
         CASE WHEN i % 50 <> 1 THEN now() - make_interval(secs => i) END \
         FROM generate_series(1, {rows}) AS i",
        tenant = tenant.id
    ))
    .await;
    sql(&url, "TRUNCATE feed_points").await;
    sql(&url, &format!(
        "INSERT INTO feed_points (tenant_id, id, value, label, run_id, updated_at) \
         SELECT '{tenant}'::uuid, i, (i % 1000) + (i * 7 % 1000) / 1000.0, CASE WHEN i % 10 = 0 THEN 'tenth' END, \
         gen_random_uuid(), now() FROM generate_series(1, {rows}) AS i",
        tenant = tenant.id
    ))
    .await;
    sql(&url, "ANALYZE").await;
    println!(
        "seeded {rows} jobs and {rows} feed rows in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );

    let sandbox = skybook_testkit::sandbox("bench-admin").await;
    let options = WebOptions {
        site: SiteOptions {
            tenant: slug.clone(),
            sessions: SessionOptions::default(),
            admin_token: Some(TOKEN.to_owned().into()),
        },
        feeds: Arc::new(vec![feed]),
        ..WebOptions::default()
    };
    let state = AppState::new(
        store.clone(),
        skybook_testkit::payments::payments_for(&sandbox),
        Arc::new(skybook_testkit::secret_key()),
        PipelineConfig::default(),
        options,
    );
    let router = skybook_web::router_with_paths(state).expect("router").0;

    // A deep page's cursor, nine tenths of the way down: the seeded jobs are a second apart, the newest first,
    // so the cursor is the newest's time less that many seconds (and the highest id, to start at the next).
    let newest = {
        let request = Request::get("/admin/api/jobs?limit=1")
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let page: serde_json::Value = serde_json::from_slice(&body).unwrap();
        page["jobs"][0]["created_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    };
    let deep = newest - chrono::Duration::seconds(rows as i64 * 9 / 10);
    let job_cursor = format!(
        "{}.ffffffff-ffff-ffff-ffff-ffffffffffff",
        deep.timestamp_nanos_opt().unwrap()
    );
    let row_cursor = serde_urlencoded::to_string([(
        "after",
        serde_json::json!([tenant.id.to_string(), (rows * 9 / 10).to_string()]).to_string(),
    )])
    .unwrap();

    println!("\n== pages, {samples} requests each (target: p95 under 100 ms) ==");
    for (name, path) in [
        (
            "jobs page (HTML: counts, the matching count, the first page)",
            "/admin/jobs".to_owned(),
        ),
        ("jobs API, first page", "/admin/api/jobs".to_owned()),
        (
            "jobs API, a deep page (9/10 down)",
            format!("/admin/api/jobs?after={job_cursor}"),
        ),
        (
            "jobs API, failed ones of a tenant",
            "/admin/api/jobs?state=failed&tenant=bench".to_owned(),
        ),
        (
            "data browser page (HTML), first page",
            "/admin/data/points".to_owned(),
        ),
        (
            "data browser API, first page",
            "/admin/api/data/points".to_owned(),
        ),
        (
            "data browser API, a deep page (9/10 down)",
            format!("/admin/api/data/points?{row_cursor}"),
        ),
        (
            "data browser API, a range filter",
            "/admin/api/data/points?value.min=999.9&id.min=500000".to_owned(),
        ),
        (
            "data browser API, sorted by an unindexed column",
            "/admin/api/data/points?sort=value&dir=desc".to_owned(),
        ),
    ] {
        let (p50, p95) = time(&router, &path, samples).await;
        let verdict = if p95 < 100.0 { "met" } else { "MISSED" };
        println!(
            "{name:<62} p50 {p50:>7.1} ms  p95 {p95:>7.1} ms  (target < 100 ms p95: {verdict})"
        );
    }

    println!("\n== 100 idle event streams (target: under 5% of a core) ==");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let http = reqwest::Client::new();
    let mut streams = Vec::new();
    for _ in 0..100 {
        let mut response = http
            .get(format!("http://{addr}/admin/events"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response
            .chunk()
            .await
            .unwrap()
            .expect("the stream's first event");
        streams.push(response);
    }
    let (cpu, wall) = (cpu_time(), Instant::now());
    tokio::time::sleep(Duration::from_secs(env("IDLE_SECONDS", 20))).await;
    let used = (cpu_time() - cpu).as_secs_f64() / wall.elapsed().as_secs_f64() * 100.0;
    let verdict = if used < 5.0 { "met" } else { "MISSED" };
    println!(
        "CPU while 100 streams sit idle: {used:.2}% of a core (server and clients in one process; target < 5%: {verdict})"
    );
    drop(streams);
}
