//! `skybook auth-proxy --config FILE`: the token-injecting proxy as its own process.

use anyhow::Result;
use skybook_proxy::{Proxy, ProxyConfig};

use crate::cli::AuthProxyArgs;
use crate::wiring;

pub async fn run(args: AuthProxyArgs) -> Result<()> {
    // Every config mistake is one line naming the key (ConfigError's message), before any socket is opened.
    let config = ProxyConfig::load(&args.config, &|name| std::env::var(name).ok())?;
    let proxy = Proxy::new(&config);
    let listener = wiring::bind(config.listen, "auth proxy").await?;
    let prefixes: Vec<&str> = proxy.routes().iter().map(|r| r.prefix()).collect();
    tracing::info!(addr = %listener.local_addr()?, routes = ?prefixes, "auth proxy listening");
    println!("auth proxy listening on http://{}", listener.local_addr()?);
    skybook_proxy::serve(listener, proxy, wiring::shutdown_signal()).await?;
    Ok(())
}
