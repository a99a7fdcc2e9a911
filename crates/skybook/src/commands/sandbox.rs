//! `skybook sandbox`: the sandbox third party as its own process.

use anyhow::{anyhow, Result};
use secrecy::SecretString;
use skybook_sandbox::SandboxConfig;

use crate::cli::SandboxArgs;
use crate::config;
use crate::wiring;

pub async fn run(args: SandboxArgs) -> Result<()> {
    let listen = config::socket_addr("--listen", &args.listen)?;
    let mut sandbox = SandboxConfig::new(&args.data_dir);
    sandbox.token_ttl = config::seconds("--token-ttl", &args.token_ttl)?;
    let (id, secret) = args
        .client
        .split_once(':')
        .filter(|(id, secret)| !id.is_empty() && !secret.is_empty())
        .ok_or_else(|| anyhow!("invalid --client: expected ID:SECRET"))?;
    sandbox.client_id = id.to_owned();
    sandbox.client_secret = SecretString::from(secret.to_owned());
    for arg in &args.client_jwt {
        sandbox = sandbox
            .with_jwt_client_arg(arg)
            .map_err(|e| anyhow!("invalid --client-jwt {arg:?}: {e}"))?;
    }
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| anyhow!("cannot create --data-dir {}: {e}", args.data_dir.display()))?;

    let listener = wiring::bind(listen, "sandbox").await?;
    println!("sandbox listening on http://{}", listener.local_addr()?);
    skybook_sandbox::serve(sandbox, listener, wiring::shutdown_signal()).await
}
