//! A running skybook (router + store) wired to a real sandbox, and helpers to talk to both.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use serde_json::Value;
use skybook_booking::PipelineConfig;
use skybook_domain::{Flight, SecretKey};
use skybook_sandbox::RunningSandbox;
use skybook_storage::{Engine, Store, Tenant};
use skybook_testkit::fixtures;
use skybook_web::site::{SessionOptions, SiteOptions};
use skybook_web::{AppState, WebOptions};
use tower::ServiceExt;

pub struct TestApp {
    pub router: Router,
    pub store: Store,
    pub sandbox: RunningSandbox,
    pub tenant: Tenant,
    pub flight: Flight,
}

pub use skybook_testkit::payments::payments_for;

impl TestApp {
    /// Tenant `air` with one flight of `capacity` seats; the website sells for `air`.
    pub async fn start(engine: Engine, name: &str, capacity: u32) -> Self {
        Self::start_with(engine, name, capacity, SessionOptions::default()).await
    }

    pub async fn start_with(
        engine: Engine,
        name: &str,
        capacity: u32,
        sessions: SessionOptions,
    ) -> Self {
        Self::start_full(engine, name, capacity, sessions, PipelineConfig::default()).await
    }

    /// With the pipeline's timings set by the test (a seat hold that has already expired, say).
    pub async fn start_with_pipeline(
        engine: Engine,
        name: &str,
        capacity: u32,
        pipeline: PipelineConfig,
    ) -> Self {
        Self::start_full(engine, name, capacity, SessionOptions::default(), pipeline).await
    }

    async fn start_full(
        engine: Engine,
        name: &str,
        capacity: u32,
        sessions: SessionOptions,
        pipeline: PipelineConfig,
    ) -> Self {
        let store = skybook_testkit::store(engine, name).await;
        let sandbox = skybook_testkit::sandbox(name).await;
        let (tenant, flight) = fixtures::tenant_with_flight(&store, "air", capacity).await;
        let options = WebOptions {
            fault_injection: true,
            site: SiteOptions {
                tenant: tenant.slug.clone(),
                sessions,
                admin_token: Some(ADMIN_TOKEN.to_owned().into()),
            },
            feeds: Arc::new(skybook_import::load_all(None).expect("built-in feed types")),
            ..WebOptions::default()
        };
        let router = node(
            &store,
            &sandbox,
            options,
            skybook_testkit::secret_key(),
            pipeline,
        );
        Self {
            router,
            store,
            sandbox,
            tenant,
            flight,
        }
    }

    /// The same app with `feeds` declared instead of the built-in ones (the data browser's tables).
    pub fn with_feeds(mut self, feeds: Vec<skybook_import::FeedType>) -> Self {
        let options = WebOptions {
            fault_injection: true,
            site: SiteOptions {
                tenant: self.tenant.slug.clone(),
                sessions: SessionOptions::default(),
                admin_token: Some(ADMIN_TOKEN.to_owned().into()),
            },
            feeds: Arc::new(feeds),
            ..WebOptions::default()
        };
        self.router = node(
            &self.store,
            &self.sandbox,
            options,
            skybook_testkit::secret_key(),
            PipelineConfig::default(),
        );
        self
    }

    /// Another node of the same deployment: a fresh router (no shared memory) on the same database and secret.
    pub fn another_node(&self) -> Router {
        self.node_with_secret(skybook_testkit::secret_key())
    }

    /// A node on the same database with its own secret key: another deployment, as far as cookies go.
    pub fn node_with_secret(&self, secret: SecretKey) -> Router {
        let options = WebOptions {
            fault_injection: true,
            site: SiteOptions {
                tenant: self.tenant.slug.clone(),
                sessions: SessionOptions::default(),
                admin_token: Some(ADMIN_TOKEN.to_owned().into()),
            },
            ..WebOptions::default()
        };
        node(
            &self.store,
            &self.sandbox,
            options,
            secret,
            PipelineConfig::default(),
        )
    }

    /// The path template of every route the router has (as this test's router was built).
    pub fn route_paths(&self) -> Vec<&'static str> {
        let options = WebOptions {
            fault_injection: true,
            ..WebOptions::default()
        };
        let state = AppState::new(
            self.store.clone(),
            payments_for(&self.sandbox),
            Arc::new(skybook_testkit::secret_key()),
            PipelineConfig::default(),
            options,
        );
        skybook_web::router_with_paths(state).expect("router").1
    }

    /// Serves the router on an ephemeral loopback port; returns its base URL.
    pub async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = self.router.clone();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        format!("http://{addr}")
    }

    pub async fn request(
        &self,
        request: Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (
            parts.status,
            parts.headers,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (status, _, body) = self
            .request(Request::get(path).body(Body::empty()).unwrap())
            .await;
        (
            status,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }

    /// POSTs a booking for tenant `air` in-process; returns status and raw body.
    pub async fn book_raw(&self, key: Option<&str>, body: &Value) -> (StatusCode, String) {
        let mut request = Request::post("/api/v1/tenants/air/bookings")
            .header("content-type", "application/json");
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let (status, _, body) = self
            .request(request.body(Body::from(body.to_string())).unwrap())
            .await;
        (status, body)
    }

    pub async fn book(&self, key: &str, body: &Value) -> (StatusCode, Value) {
        let (status, body) = self.book_raw(Some(key), body).await;
        (status, serde_json::from_str(&body).unwrap())
    }

    pub async fn sandbox_stats(&self) -> Value {
        skybook_testkit::process::sandbox_stats(&self.sandbox.url()).await
    }

    pub async fn sandbox_faults(&self, faults: Value) {
        skybook_testkit::process::sandbox_faults(&self.sandbox.url(), faults).await;
    }

    /// Successful charges at the provider.
    pub async fn charges(&self) -> i64 {
        skybook_testkit::process::sandbox_charges(&self.sandbox.url()).await
    }

    pub async fn seats_left(&self) -> u32 {
        fixtures::seats_left(&self.store, &self.tenant, &self.flight).await
    }

    pub fn body(&self, given: &str, family: &str, card: &str) -> Value {
        fixtures::booking_body(&self.flight, given, family, card)
    }
}

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

fn node(
    store: &Store,
    sandbox: &RunningSandbox,
    options: WebOptions,
    secret: SecretKey,
    pipeline: PipelineConfig,
) -> Router {
    let state = AppState::new(
        store.clone(),
        payments_for(sandbox),
        Arc::new(secret),
        pipeline,
        options,
    );
    skybook_web::router_with_paths(state).expect("router").0
}

/// A fresh idempotency key.
pub fn key(prefix: &str, i: usize) -> String {
    format!("{prefix}-{i:04}-{}", uuid::Uuid::new_v4().simple())
}
