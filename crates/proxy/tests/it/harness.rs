//! A sandbox and a proxy in front of it, both on ephemeral loopback ports.

use std::time::Duration;

use serde_json::Value;
use skybook_proxy::{Proxy, ProxyConfig};
use skybook_sandbox::{RunningSandbox, SandboxConfig};

pub struct Setup {
    pub sandbox: RunningSandbox,
    pub proxy_url: String,
    pub proxy: Proxy,
    pub http: reqwest::Client,
}

/// The standard route: `/payments` → the sandbox, client credentials from the `SECRET` variable.
pub fn payments_route(sandbox_url: &str) -> String {
    format!(
        r#"
[[route]]
prefix = "/payments"
upstream = "{sandbox_url}"
token_url = "{sandbox_url}/oauth/token"
client_id = "skybook"
client_secret_env = "SECRET"
scope = "payments"
headers = {{ "X-Partner" = "skybook" }}
"#
    )
}

impl Setup {
    /// A sandbox issuing tokens valid for `token_ttl`, and a proxy whose config is `routes(sandbox_url)`.
    pub async fn start(name: &str, token_ttl: Duration, routes: impl Fn(&str) -> String) -> Self {
        Self::start_with(name, token_ttl, routes, |config| config).await
    }

    /// As [`Setup::start`], with the sandbox's configuration adjusted by `sandbox`.
    pub async fn start_with(
        name: &str,
        token_ttl: Duration,
        routes: impl Fn(&str) -> String,
        sandbox: impl FnOnce(SandboxConfig) -> SandboxConfig,
    ) -> Self {
        let dir = skybook_testkit::test_dir(&format!("proxy-{name}"));
        let mut config = SandboxConfig::new(dir.join("sandbox"));
        config.token_ttl = token_ttl;
        let config = sandbox(config);
        let sandbox = skybook_sandbox::spawn(config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let text = format!("listen = \"127.0.0.1:0\"\n{}", routes(&sandbox.url()));
        let config = ProxyConfig::parse(&text, &dir, &|name| {
            (name == "SECRET").then(|| SandboxConfig::DEFAULT_CLIENT_SECRET.to_owned())
        })
        .unwrap();
        let proxy = Proxy::new(&config);
        let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
        let proxy_url = format!("http://{}", listener.local_addr().unwrap());
        let serving = proxy.clone();
        tokio::spawn(async move {
            skybook_proxy::serve(listener, serving, std::future::pending())
                .await
                .unwrap();
        });
        Self {
            sandbox,
            proxy_url,
            proxy,
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .unwrap(),
        }
    }

    pub async fn tokens_issued(&self) -> i64 {
        skybook_testkit::process::sandbox_stats(&self.sandbox.url()).await["tokens_issued"]
            .as_i64()
            .unwrap()
    }

    pub async fn faults(&self, faults: Value) {
        skybook_testkit::process::sandbox_faults(&self.sandbox.url(), faults).await;
    }

    /// `GET <proxy>/payments<path>`; returns status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        self.get_any(&format!("/payments{path}")).await
    }

    /// `GET <proxy><path>`, any path; returns status and body.
    pub async fn get_any(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.proxy_url))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// The proxy's own Prometheus text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.proxy_url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}
