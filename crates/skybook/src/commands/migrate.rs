//! `skybook migrate`: apply pending migrations and exit (run as a Kubernetes Job before a rollout), or with
//! `--check` only say whether any are pending. Two `migrate` runs at once apply each migration once: sqlx takes
//! an advisory lock on PostgreSQL for the run, and SQLite has one writer.

use anyhow::{bail, Context, Result};
use skybook_storage::{MigrationStatus, Store};

use crate::cli::MigrateArgs;
use crate::config;
use crate::wiring::{self, Schema};

pub async fn run(args: MigrateArgs) -> Result<()> {
    let url = config::database_url(config::required(
        "SKYBOOK_DATABASE_URL (--database-url)",
        &args.database.database_url,
    )?)?;
    let pool = config::pool(args.database.database_max_connections.as_deref())?;
    let redacted = skybook_storage::redact(&url);
    if args.check {
        let store = Store::connect(&url, &pool)
            .await
            .with_context(|| format!("connecting to {redacted}"))?;
        let status = store.migration_status().await?;
        store.close().await;
        return match status {
            MigrationStatus::UpToDate => {
                println!("schema is current ({redacted})");
                Ok(())
            }
            MigrationStatus::Pending(pending) => {
                for migration in &pending {
                    println!("pending: {migration}");
                }
                bail!(
                    "{} migration(s) pending at {redacted}: run `skybook migrate`",
                    pending.len()
                )
            }
        };
    }
    let store = wiring::connect(&url, &pool, Schema::Migrate).await?;
    tracing::info!(database = %redacted, "migrations applied; schema is current");
    store.close().await;
    Ok(())
}
