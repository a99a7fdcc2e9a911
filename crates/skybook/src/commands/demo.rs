//! `skybook demo`: from a fresh clone to a working site and API with one command. Embedded SQLite (or
//! `--database-url`), demo data, the sandbox third party in-process, the secret key and admin token generated
//! into the data dir on first run.

use std::path::Path;

use anyhow::{Context, Result};
use chrono::{Duration, NaiveTime, Utc};
use secrecy::SecretString;
use skybook_booking::PipelineConfig;
use skybook_clients::ClientCredentials;
use skybook_domain::{AirportCode, Currency, FlightNumber, Money, SecretKey, TenantSlug};
use skybook_sandbox::SandboxConfig;
use skybook_storage::{NewFlight, Store};
use skybook_web::site::{SessionOptions, SiteOptions};
use skybook_web::WebOptions;

use crate::background;
use crate::cli::DemoArgs;
use crate::config::{self, MailTransport, PaymentsConfig};
use crate::wiring::{self, Schema};

/// The demo timetable: each day, these departures each way (UTC).
const DEPARTURES: [(&str, &str, &str, u32, u32); 4] = [
    ("EI154", "DUB", "LHR", 7, 30),
    ("EI164", "DUB", "LHR", 17, 45),
    ("EI155", "LHR", "DUB", 10, 15),
    ("EI165", "LHR", "DUB", 20, 30),
];
const DAYS: i64 = 30;
const SEATS: u32 = 12;
const FARE_MINOR: i64 = 9599;

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

    let sandbox = skybook_sandbox::spawn(SandboxConfig::new(data_dir), sandbox_listen).await?;
    let store = wiring::connect(&url, &Default::default(), Schema::Migrate).await?;
    seed(&store).await.context("seeding demo data")?;

    let payments = PaymentsConfig {
        url: url::Url::parse(&sandbox.url())?,
        credentials: Some(ClientCredentials {
            token_url: url::Url::parse(&format!("{}/oauth/token", sandbox.url()))?,
            client_id: SandboxConfig::DEFAULT_CLIENT_ID.into(),
            client_secret: SecretString::from(SandboxConfig::DEFAULT_CLIENT_SECRET),
            scope: None,
            audience: None,
            extra_params: Vec::new(),
        }),
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

/// Tenant `demo` with DUB⇄LHR flights on each of the next 30 days. Idempotent: re-running adds only the days
/// that came into the window.
pub async fn seed(store: &Store) -> Result<()> {
    let tenant = store
        .ensure_tenant(&TenantSlug::parse("demo")?, "Skybook Demo Air")
        .await?;
    let fare = Money::new(FARE_MINOR, Currency::parse("EUR")?);
    let today = Utc::now().date_naive();
    for day in 0..DAYS {
        let date = today + Duration::days(day);
        for (number, origin, destination, hour, minute) in DEPARTURES {
            let time = NaiveTime::from_hms_opt(hour, minute, 0).expect("valid time");
            let flight = NewFlight {
                number: FlightNumber::parse(number)?,
                origin: AirportCode::parse(origin)?,
                destination: AirportCode::parse(destination)?,
                departs_at: date.and_time(time).and_utc(),
                capacity: SEATS,
                fare: fare.clone(),
            };
            store.ensure_flight(tenant.id, &flight).await?;
        }
    }
    Ok(())
}
