//! `skybook migrate`: apply pending migrations and exit (run as a Kubernetes Job before a rollout).

use anyhow::Result;

use crate::cli::MigrateArgs;
use crate::config;
use crate::wiring::{self, Schema};

pub async fn run(args: MigrateArgs) -> Result<()> {
    let url = config::database_url(config::required(
        "SKYBOOK_DATABASE_URL (--database-url)",
        &args.database.database_url,
    )?)?;
    let pool = config::pool(args.database.database_max_connections.as_deref())?;
    let store = wiring::connect(&url, &pool, Schema::Migrate).await?;
    tracing::info!(database = %skybook_storage::redact(&url), "migrations applied; schema is current");
    store.close().await;
    Ok(())
}
