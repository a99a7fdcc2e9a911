//! `skybook demo`: from a fresh clone to a working site and API with one command. Embedded SQLite (or
//! `--database-url`), demo data, the sandbox third party in-process, the secret key and admin token generated
//! into the data dir on first run.

use std::path::Path;

use anyhow::{bail, Context, Result};
use chrono::{NaiveTime, Utc};
use secrecy::SecretString;
use skybook_booking::PipelineConfig;
use skybook_clients::ClientCredentials;
use skybook_domain::{SecretKey, TenantSlug};
use skybook_sandbox::{Departure, SandboxConfig, Timetable};
use skybook_storage::Store;
use skybook_web::site::{SessionOptions, SiteOptions};
use skybook_web::WebOptions;

use crate::background;
use crate::cli::DemoArgs;
use crate::config::{self, MailTransport, PaymentsConfig};
use crate::imports::{self, Imports};
use crate::wiring::{self, Schema};

/// The demo tenant's partner publishes this timetable (UTC): each day, these departures each way.
const DEPARTURES: [(&str, &str, &str, u32, u32); 4] = [
    ("EI154", "DUB", "LHR", 7, 30),
    ("EI164", "DUB", "LHR", 17, 45),
    ("EI155", "LHR", "DUB", 10, 15),
    ("EI165", "LHR", "DUB", 20, 30),
];
/// Days each nightly file covers, from its date.
const DAYS: u32 = 30;
const SEATS: u32 = 12;
const FARE_MINOR: u64 = 9599;
const TENANT: &str = "demo";
/// The feeds the demo tenant subscribes to: both fetched nightly, and once at start.
const FEEDS: [&str; 2] = ["flights", "airports"];

pub async fn run(args: DemoArgs) -> Result<()> {
    let listen = config::socket_addr("SKYBOOK_LISTEN (--listen)", &args.listen)?;
    let sandbox_listen = config::socket_addr("--sandbox-listen", &args.sandbox_listen)?;
    let data_dir = &args.data_dir;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create --data-dir {}", data_dir.display()))?;
    let url = match &args.database_url {
        Some(url) => config::database_url(url)?,
        None => format!("sqlite://{}", data_dir.join("skybook.db").display()),
    };
    let secret = SecretKey::parse(&read_or_create(
        &data_dir.join("secret-key"),
        SecretKey::generate_hex,
    )?)
    .context("the secret key in the data dir is invalid")?;
    let fault_injection = config::fault_injection(&args.faults)?;
    let mut background = config::background(
        &args.background,
        Some(data_dir.join("mail")),
        "*/5 * * * * *",
    )?;
    background.fault_injection = fault_injection;
    let admin_token_path = data_dir.join("admin-token");
    let admin_token = read_or_create(&admin_token_path, SecretKey::generate_hex)?;

    let sandbox = skybook_sandbox::spawn(
        SandboxConfig::new(data_dir).with_timetable(TENANT, timetable()),
        sandbox_listen,
    )
    .await?;
    let store = wiring::connect(&url, &Default::default(), Schema::Migrate).await?;
    let sandbox_url = url::Url::parse(&sandbox.url())?;
    let credentials = ClientCredentials {
        token_url: sandbox_url.join("/oauth/token")?,
        client_id: SandboxConfig::DEFAULT_CLIENT_ID.into(),
        client_secret: SecretString::from(SandboxConfig::DEFAULT_CLIENT_SECRET),
        scope: None,
        audience: None,
        extra_params: Vec::new(),
    };
    let feed_client = wiring::feed_client(sandbox_url.clone(), Some(credentials.clone()))?;
    let imports =
        imports::ready(&store, args.feeds.feeds_dir.as_deref(), Some(feed_client)).await?;
    let catalog = seed(&store, &imports).await.context("seeding demo data")?;
    let feeds = std::sync::Arc::clone(&imports.feeds);
    background.imports = Some(imports);

    let payments = PaymentsConfig {
        url: sandbox_url,
        credentials: Some(credentials),
    };
    let app = wiring::app(
        store.clone(),
        wiring::payment_provider(payments)?,
        secret,
        PipelineConfig::default(),
        WebOptions {
            site: SiteOptions {
                // The demo serves plain HTTP on loopback.
                sessions: SessionOptions {
                    secure_cookies: false,
                    ..SessionOptions::default()
                },
                admin_token: Some(SecretString::from(admin_token)),
                ..SiteOptions::default()
            },
            fault_injection,
            feeds,
            ..WebOptions::default()
        },
    )?;
    let listener = wiring::bind(listen, "site and API").await?;
    let site = format!("http://{}", listener.local_addr()?);
    println!("skybook demo is running");
    println!("  site:        {site}/");
    println!("  API:         {site}/api/v1/tenants/demo/flights?origin=DUB&destination=LHR");
    println!("  OpenAPI:     {site}/api/openapi.json");
    println!(
        "  sandbox:     {}  (stats: {}/sandbox/stats)",
        sandbox.url(),
        sandbox.url()
    );
    println!("  catalog:     {catalog}");
    println!("  admin token: {}", admin_token_path.display());
    println!("  database:    {}", skybook_storage::redact(&url));
    match &background.mail {
        MailTransport::Smtp(_) => println!("  emails:      sent through SKYBOOK_SMTP_URL"),
        MailTransport::Files(dir) => println!("  emails:      {}", dir.display()),
        MailTransport::Off => println!("  emails:      not sent"),
    }
    let workers = background::start(&store, app.bookings, background)?;
    // One process on a laptop: no load balancer to drain from.
    let shutdown = wiring::Shutdown {
        draining: app.draining,
        drain: std::time::Duration::ZERO,
        grace: std::time::Duration::from_secs(10),
    };
    wiring::serve(listener, app.router, shutdown).await?;
    workers.shutdown().await;
    sandbox.shutdown().await;
    store.close().await;
    Ok(())
}

/// The file's trimmed content, or a fresh value written to it (owner-only permissions) on first run.
fn read_or_create(path: &Path, generate: impl FnOnce() -> String) -> Result<String> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        return Ok(existing.trim().to_owned());
    }
    let value = generate();
    std::fs::write(path, format!("{value}\n"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(value)
}

/// The demo partner's timetable, as the sandbox publishes it.
fn timetable() -> Timetable {
    Timetable {
        departures: DEPARTURES
            .iter()
            .map(|&(number, origin, destination, hour, minute)| Departure {
                number: number.into(),
                origin: origin.into(),
                destination: destination.into(),
                time: NaiveTime::from_hms_opt(hour, minute, 0).expect("valid time"),
            })
            .collect(),
        days: DAYS,
        capacity: SEATS,
        fare_minor: FARE_MINOR,
        currency: "EUR".into(),
    }
}

/// Tenant `demo`, subscribed to both feeds (so their nightly schedules fetch its files), and today's files
/// imported now: its catalog — DUB⇄LHR on each of the next 30 days — comes in through the importer. Idempotent:
/// a restart the same day finds the same content and skips it; a restart on a later day brings the days that
/// came into the window. Returns a line on the catalog import for the banner.
pub async fn seed(store: &Store, imports: &Imports) -> Result<String> {
    let tenant = store
        .ensure_tenant(&TenantSlug::parse(TENANT)?, "Skybook Demo Air")
        .await?;
    let client = imports
        .client
        .as_deref()
        .context("the demo's feeds come from its sandbox")?;
    let now = Utc::now();
    let today = now.date_naive();
    let mut catalog = String::new();
    for name in FEEDS {
        store.subscribe_tenant_feed(tenant.id, name, now).await?;
        let feed = imports
            .feeds
            .iter()
            .find(|f| f.name() == name)
            .with_context(|| format!("no feed type {name:?}"))?;
        let summary = imports::fetch_and_import(store, client, &tenant, feed, today, &|_, _| {})
            .await?
            .with_context(|| format!("the sandbox refused the {name} feed"))?;
        if summary.status == "failed" {
            bail!(
                "importing the {name} feed failed: {}",
                summary.error.unwrap_or_default()
            );
        }
        if name == "flights" {
            catalog = match summary.status {
                "skipped" => format!("today's flights file was imported already ({today})"),
                _ => format!(
                    "{} flights imported from today's file ({} new, {} updated)",
                    summary.counts.read, summary.counts.inserted, summary.counts.updated
                ),
            };
        }
    }
    Ok(catalog)
}
