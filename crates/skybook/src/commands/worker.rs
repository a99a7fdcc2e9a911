//! `skybook worker`: the background loops without the web server (scale them separately from `serve`).

use anyhow::Result;

use crate::background;
use crate::cli::WorkerArgs;
use crate::config;
use crate::wiring::{self, Schema};

pub async fn run(args: WorkerArgs) -> Result<()> {
    let url = config::database_url(config::required(
        "SKYBOOK_DATABASE_URL (--database-url)",
        &args.database.database_url,
    )?)?;
    let secret = config::secret_key(args.secret_key.as_deref())?;
    let payments = config::payments(&args.payments)?;
    let db_retry = config::database_retry(&args.database_retry_budget)?;
    let mut background = config::background(&args.background, None, "0 * * * * *")?;
    background.fault_injection = config::fault_injection(&args.faults)?;
    let pool = config::pool(args.database.database_max_connections.as_deref())?;
    let store = wiring::connect(&url, &pool, Schema::MigrateSqliteOnly).await?;
    background.imports =
        Some(crate::imports::prepare(&store, &args.feeds, &args.feed_source).await?);
    let bookings = wiring::booking_service(
        store.clone(),
        wiring::payment_provider(payments)?,
        secret,
        db_retry,
    );
    let workers = background::start(&store, bookings, background)?;
    let grace = config::duration(
        "SKYBOOK_SHUTDOWN_GRACE (--shutdown-grace)",
        &args.shutdown_grace,
    )?;
    wiring::shutdown_signal_with_deadline(grace).await;
    tracing::info!("stopping background workers");
    workers.shutdown().await;
    store.close().await;
    Ok(())
}
