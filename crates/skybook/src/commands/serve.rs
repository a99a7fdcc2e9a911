//! `skybook serve`: the production server.

use anyhow::Result;
use skybook_booking::PipelineConfig;
use skybook_web::WebOptions;

use crate::background;
use crate::cli::ServeArgs;
use crate::config;
use crate::wiring::{self, Schema};

pub async fn run(args: ServeArgs) -> Result<()> {
    // Parse every setting before touching the network, so a mistake costs no connection attempts.
    let listen = config::socket_addr("SKYBOOK_LISTEN (--listen)", &args.listen)?;
    let url = config::database_url(config::required(
        "SKYBOOK_DATABASE_URL (--database-url)",
        &args.database.database_url,
    )?)?;
    let secret = config::secret_key(args.secret_key.as_deref())?;
    let payments = config::payments(&args.payments)?;
    let site = config::site(&args.site)?;
    let metrics_listen = args
        .metrics_listen
        .as_deref()
        .map(|raw| config::socket_addr("SKYBOOK_METRICS_LISTEN (--metrics-listen)", raw))
        .transpose()?;
    let metrics = config::metrics_access(metrics_listen.is_some(), args.metrics_token.as_deref())?;
    let fault_injection = config::fault_injection(&args.faults)?;

    let pipeline = PipelineConfig {
        seat_hold: config::duration("SKYBOOK_SEAT_HOLD (--seat-hold)", &args.seat_hold)?,
        db_retry: config::database_retry(&args.database_retry_budget)?,
        ..PipelineConfig::default()
    };
    let mut background = config::background(&args.background, None, "0 * * * * *")?;
    background.fault_injection = fault_injection;
    let pool = config::pool(args.database.database_max_connections.as_deref())?;
    let store = wiring::connect(&url, &pool, Schema::MigrateSqliteOnly).await?;
    let imports = crate::imports::prepare(&store, &args.feeds, &args.feed_source).await?;
    let feeds = std::sync::Arc::clone(&imports.feeds);
    background.imports = Some(imports);
    let options = WebOptions {
        feeds,
        fault_injection,
        site,
        metrics,
        throttle: config::throttle(&args.lookups_per_minute, &args.admin_attempts_per_minute)?,
        ..WebOptions::default()
    };
    let shutdown_grace = config::duration(
        "SKYBOOK_SHUTDOWN_GRACE (--shutdown-grace)",
        &args.shutdown_grace,
    )?;
    let shutdown_drain = config::duration_or_zero(
        "SKYBOOK_SHUTDOWN_DRAIN (--shutdown-drain)",
        &args.shutdown_drain,
    )?;
    let app = wiring::app(
        store.clone(),
        wiring::payment_provider(payments)?,
        secret,
        pipeline,
        options,
    )?;
    let listener = wiring::bind(listen, "site and API").await?;
    if let Some(addr) = metrics_listen {
        let metrics = wiring::bind(addr, "metrics").await?;
        tracing::info!(addr = %metrics.local_addr()?, "metrics served on their own listener");
        tokio::spawn(wiring::serve_until_signal(
            metrics,
            skybook_web::probes::metrics_router(),
        ));
    }
    tracing::info!(addr = %listener.local_addr()?, database = %skybook_storage::redact(&url), "skybook serving");
    let workers = match args.no_workers {
        true => None,
        false => Some(background::start(&store, app.bookings, background)?),
    };
    let shutdown = wiring::Shutdown {
        draining: app.draining,
        drain: shutdown_drain.min(shutdown_grace),
        grace: shutdown_grace,
    };
    wiring::serve(listener, app.router, shutdown).await?;
    if let Some(workers) = workers {
        workers.shutdown().await;
    }
    store.close().await;
    Ok(())
}
