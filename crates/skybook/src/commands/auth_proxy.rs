//! `skybook auth-proxy --config FILE`: the token-injecting proxy as its own process.

use anyhow::{Context, Result};
use skybook_proxy::{Proxy, ProxyConfig};

use crate::cli::AuthProxyArgs;
use crate::wiring;

pub async fn run(args: AuthProxyArgs) -> Result<()> {
    // Every config mistake is one line naming the key (ConfigError's message), before any socket is opened.
    let config = ProxyConfig::load(&args.config, &|name| std::env::var(name).ok())?;
    let proxy = Proxy::new(&config);
    let prefixes: Vec<String> = proxy
        .routes()
        .iter()
        .map(|r| r.prefix().to_owned())
        .collect();
    let workers = config.workers;
    let bound = |addr| {
        tracing::info!(%addr, routes = ?prefixes, workers, "auth proxy listening");
        println!("auth proxy listening on http://{addr}");
    };
    let grace = crate::config::duration(
        "SKYBOOK_SHUTDOWN_GRACE (--shutdown-grace)",
        &args.shutdown_grace,
    )?;
    let drain = crate::config::duration_or_zero(
        "SKYBOOK_SHUTDOWN_DRAIN (--shutdown-drain)",
        &args.shutdown_drain,
    )?;
    // At SIGTERM: not ready at once, requests still forwarded while callers stop sending, then the workers
    // let what is in flight finish.
    let shutdown = {
        let proxy = proxy.clone();
        async move {
            wiring::shutdown_signal_with_deadline(grace).await;
            proxy.start_draining();
            tracing::info!(?drain, "not ready; draining");
            tokio::time::sleep(drain).await;
        }
    };
    skybook_proxy::serve_workers(config.listen, proxy, workers, bound, shutdown)
        .await
        .with_context(|| format!("auth proxy on {}", config.listen))?;
    Ok(())
}
