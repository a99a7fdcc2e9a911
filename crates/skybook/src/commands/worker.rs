//! `skybook worker`: the background loops without the web server (scale them separately from `serve`).

use anyhow::Result;

use crate::cli::WorkerArgs;
use crate::config;
use crate::wiring::{self, Schema};

pub async fn run(args: WorkerArgs) -> Result<()> {
    let url = config::database_url(config::required(
        "SKYBOOK_DATABASE_URL (--database-url)",
        &args.database.database_url,
    )?)?;
    let pool = config::pool(args.database.database_max_connections.as_deref())?;
    let store = wiring::connect(&url, &pool, Schema::MigrateSqliteOnly).await?;
    let workers = wiring::start_workers(&store);
    wiring::shutdown_signal().await;
    tracing::info!("stopping background workers");
    workers.shutdown().await;
    store.close().await;
    Ok(())
}
