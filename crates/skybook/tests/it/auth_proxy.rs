//! `skybook auth-proxy` as a process: skybook booking through it with no credentials of its own, a clean
//! SIGTERM, and a config mistake reported in one line.

use serde_json::json;
use skybook_testkit::fixtures::CARD_OK;
use skybook_testkit::process::{
    post_booking, sandbox_charges, sandbox_faults, sandbox_stats, start_sandbox,
};

use crate::process::{run_to_end, skybook, Running};

/// Starts `skybook auth-proxy` with a `/payments` route to the sandbox; returns the process and its URL.
fn start_proxy(dir: &std::path::Path, sandbox_url: &str) -> (Running, String) {
    start_proxy_with_token_url(dir, sandbox_url, &format!("{sandbox_url}/oauth/token"))
}

fn start_proxy_with_token_url(
    dir: &std::path::Path,
    sandbox_url: &str,
    token_url: &str,
) -> (Running, String) {
    let config = dir.join("proxy.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\n[[route]]\nprefix = \"/payments\"\nupstream = \"{sandbox_url}\"\n\
             token_url = \"{token_url}\"\nclient_id = \"skybook\"\nclient_secret_env = \"PAYMENTS_CLIENT_SECRET\"\n"
        ),
    )
    .unwrap();
    let mut cmd = skybook();
    cmd.args(["auth-proxy", "--config"])
        .arg(&config)
        .env("PAYMENTS_CLIENT_SECRET", "sandbox-secret")
        .env("SKYBOOK_SHUTDOWN_DRAIN", "1s")
        .env("RUST_LOG", "info,skybook_proxy=debug");
    let proxy = Running::start(cmd, dir, "auth-proxy");
    let url = proxy.url_after("auth proxy listening on");
    (proxy, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skybook_books_through_the_proxy_without_credentials() {
    let dir = skybook_testkit::test_dir("behind-proxy");
    let exe = env!("CARGO_BIN_EXE_skybook");
    let (_sandbox, sandbox_url) = start_sandbox(exe, &dir);
    let (_proxy, proxy_url) = start_proxy(&dir, &sandbox_url);

    let database_url = format!("sqlite://{}", dir.join("skybook.db").display());
    let store = skybook_testkit::store_at(&database_url).await;
    let (_, flight) = skybook_testkit::fixtures::tenant_with_flight(&store, "air", 5).await;
    store.close().await;
    // No SKYBOOK_PAYMENTS_TOKEN_URL / CLIENT_ID / CLIENT_SECRET: the proxy injects the token.
    let mut cmd = skybook();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--no-workers"])
        .env("SKYBOOK_DATABASE_URL", &database_url)
        .env(
            "SKYBOOK_SECRET_KEY",
            "shared-secret-of-this-deployment-0123456789",
        )
        .env("SKYBOOK_PAYMENTS_URL", format!("{proxy_url}/payments"));
    let server = Running::start(cmd, &dir, "serve");
    let site = server.serving_url();

    let body = json!({
        "flight_id": flight.id.to_string(), "contact_email": "ann@example.com",
        "passengers": [{"given_name": "Ann", "family_name": "Lee"}],
        "card": {"number": CARD_OK, "exp_month": 12, "exp_year": 2031, "cvc": "123"}
    });
    let (status, booked) = post_booking(
        &reqwest::Client::new(),
        &site,
        "air",
        "behind-proxy-key-0001",
        &body,
    )
    .await;
    assert_eq!(status, 201, "{booked}");
    assert_eq!(sandbox_charges(&sandbox_url).await, 1);
    let stats = sandbox_stats(&sandbox_url).await;
    assert_eq!(stats["tokens_issued"], 1, "the proxy fetched the one token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_request_finish() {
    let dir = skybook_testkit::test_dir("proxy-sigterm");
    let exe = env!("CARGO_BIN_EXE_skybook");
    let (_sandbox, sandbox_url) = start_sandbox(exe, &dir);
    let (mut proxy, proxy_url) = start_proxy(&dir, &sandbox_url);
    let http = reqwest::Client::new();
    // Ready first (it fetches its token on its own), so the readiness seen below is the shutdown's doing.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while http
        .get(format!("{proxy_url}/ready"))
        .send()
        .await
        .unwrap()
        .status()
        != 200
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the proxy never became ready"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // 3 s late: still in flight after the proxy's 1 s drain, when it no longer takes connections.
    sandbox_faults(&sandbox_url, json!({"latency_ms": 3000})).await;
    let slow = tokio::spawn({
        let (http, proxy_url) = (http.clone(), proxy_url.clone());
        async move {
            http.get(format!("{proxy_url}/payments/v1/echo"))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    // The proxy logs (at debug) when it starts forwarding: from then the request is in flight, held by the
    // sandbox's latency fault.
    proxy.wait_for_line("forwarding");
    proxy.terminate();
    // Not ready at once, while still answering: callers are told before anything is refused.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    let ready = loop {
        let status = http
            .get(format!("{proxy_url}/ready"))
            .send()
            .await
            .unwrap()
            .status();
        if status != 200 || std::time::Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(ready, 503, "readiness turns off at SIGTERM");
    assert_eq!(
        slow.await.unwrap().unwrap(),
        200,
        "the in-flight request finished"
    );
    assert_eq!(proxy.wait_exit(), Some(0), "then the proxy exited cleanly");
}

/// An orchestrator sends traffic only to a ready proxy: it must get its tokens without waiting for requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_becomes_ready_without_traffic() {
    let dir = skybook_testkit::test_dir("proxy-ready");
    let exe = env!("CARGO_BIN_EXE_skybook");
    let (_sandbox, sandbox_url) = start_sandbox(exe, &dir);
    let (_proxy, proxy_url) = start_proxy(&dir, &sandbox_url);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let status = reqwest::get(format!("{proxy_url}/ready"))
            .await
            .unwrap()
            .status();
        if status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never ready (last {status})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(sandbox_stats(&sandbox_url).await["tokens_issued"], 1);
}

/// A token endpoint that accepts connections and never answers: requests get their 503 in seconds, not after
/// the token client's own timeouts and retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_token_endpoint_gives_a_prompt_503() {
    let dir = skybook_testkit::test_dir("proxy-hang");
    let exe = env!("CARGO_BIN_EXE_skybook");
    let (_sandbox, sandbox_url) = start_sandbox(exe, &dir);
    // The kernel completes the handshake from the backlog; nobody ever reads the request.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let token_url = format!("http://{}/oauth/token", silent.local_addr().unwrap());
    let (_proxy, proxy_url) = start_proxy_with_token_url(&dir, &sandbox_url, &token_url);
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(8))
        .build()
        .unwrap();
    let response = http
        .get(format!("{proxy_url}/payments/v1/echo"))
        .send()
        .await
        .expect("an answer well before the 8 s client timeout");
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        (body["error"].as_str(), body["route"].as_str()),
        (Some("token_unavailable"), Some("/payments")),
        "{body}"
    );
}

#[test]
fn a_config_mistake_is_one_line_naming_the_key() {
    let dir = skybook_testkit::test_dir("proxy-config");
    let config = dir.join("proxy.toml");
    std::fs::write(
        &config,
        "[[route]]\nprefix = \"/p\"\nupstream = \"not a url\"\n",
    )
    .unwrap();
    let mut cmd = skybook();
    cmd.args(["auth-proxy", "--config"]).arg(&config);
    let (code, stderr) = run_to_end(cmd);
    assert_ne!(code, 0);
    let line = stderr.trim();
    assert!(line.contains("route[0].upstream"), "{line}");
    assert_eq!(line.lines().count(), 1, "{line}");
}
