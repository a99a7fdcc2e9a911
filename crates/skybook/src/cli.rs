//! The command line. Every flag also reads an environment variable (flags win); values are kept as text here
//! and parsed in `config.rs`, so a bad value is reported as one line that names the variable.
//!
//! None of these types is `Debug`: several hold secrets as plain text until `config.rs` wraps them, and nothing
//! should be able to print them on the way.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "skybook",
    version,
    about = "Flight booking that never bills twice."
)]
pub struct Cli {
    /// Log format: human-readable text, or JSON lines for a log aggregator.
    #[arg(long, global = true, env = "SKYBOOK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Forward crashes (panics) to Sentry at this DSN as well as storing them. Off when unset.
    #[arg(
        long,
        global = true,
        env = "SKYBOOK_SENTRY_DSN",
        hide_env_values = true
    )]
    pub sentry_dsn: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Zero-setup demo: embedded SQLite, demo data, the sandbox in-process, site + API + workers.
    Demo(DemoArgs),
    /// Production server: site, API and background workers.
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations and exit.
    Migrate(MigrateArgs),
    /// The sandbox third party (payments, OAuth2, partner feeds) as its own process.
    Sandbox(SandboxArgs),
    /// The in-cluster OAuth2 token-injecting proxy to third-party APIs.
    AuthProxy(AuthProxyArgs),
    /// Background workers only: job queue, cron, email outbox, alert delivery, the sentinel, housekeeping.
    Worker(Box<WorkerArgs>),
    /// The partner-data importer: run an import, list feed types, runs and rejected rows.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Tenants: create and list them, and manage their feed subscriptions.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// The admin's access: tenant operator tokens.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Tenant operator tokens for `/admin` (the platform admin's is `SKYBOOK_ADMIN_TOKEN`).
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a tenant operator token: printed once, stored only as its hash.
    Create(TokenCreateArgs),
    /// Revoke a token: requests with it, and sessions signed in with it, are refused from now on.
    Revoke(TokenRevokeArgs),
    /// List the tokens (their ids, tenants and rights; never the tokens).
    List(TokenListArgs),
}

#[derive(Args)]
pub struct TokenCreateArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The tenant (slug) whose operator the token is for.
    #[arg(long)]
    pub tenant: String,
    /// The token sees the tenant's jobs, imports, data and bookings, and can change nothing.
    #[arg(long)]
    pub read_only: bool,
}

#[derive(Args)]
pub struct TokenRevokeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The token's id (printed at creation, and by `skybook admin token list`).
    pub id: String,
}

#[derive(Args)]
pub struct TokenListArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Only this tenant's tokens (slug).
    #[arg(long)]
    pub tenant: Option<String>,
}

#[derive(Subcommand)]
pub enum ImportCommand {
    /// Import one file in the foreground, with progress, and print the run's summary and first rejects. Exit
    /// status 0 when the run succeeded or was skipped (the same content again), 1 otherwise.
    Run(ImportRunArgs),
    /// The feed types (built in and from SKYBOOK_FEEDS_DIR): columns, key, mode, schedule.
    Feeds(FeedsArgs),
    /// Recent import runs, newest first.
    Runs(ImportRunsArgs),
    /// A run's rejected rows as CSV — the file's header, then each row as it was — ready to fix and re-send.
    Rejects(ImportRejectsArgs),
}

#[derive(Args)]
pub struct FeedsArgs {
    /// A directory of feed declarations (`*.toml`) besides the built-in ones.
    #[arg(long, env = "SKYBOOK_FEEDS_DIR")]
    pub feeds_dir: Option<PathBuf>,
}

#[derive(Args)]
pub struct ImportRunArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub feeds: FeedsArgs,
    /// The tenant (slug) the data is for.
    #[arg(long)]
    pub tenant: String,
    /// The feed type (see `skybook import feeds`).
    #[arg(long)]
    pub feed: String,
    /// The file: a .csv, a .zip holding one, or the partner's JSON envelope `{"data": "<base64 zip>"}`.
    #[arg(long, required_unless_present = "date", conflicts_with = "date")]
    pub file: Option<PathBuf>,
    /// Fetch this day's feed (YYYY-MM-DD) from SKYBOOK_FEEDS_URL instead of reading a file.
    #[arg(long)]
    pub date: Option<String>,
    #[command(flatten)]
    pub source: FeedSourceArgs,
    /// Read and check the whole file and report every rejected row; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args)]
pub struct ImportRunsArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Only this tenant's runs (slug).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only this feed's runs.
    #[arg(long)]
    pub feed: Option<String>,
    /// How many.
    #[arg(long, default_value = "20")]
    pub limit: String,
}

#[derive(Args)]
pub struct ImportRejectsArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The run's id (from `skybook import runs`).
    pub run: String,
}

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Create a tenant.
    Create(TenantCreateArgs),
    /// List the tenants.
    List(TenantListArgs),
    /// Show a tenant's feed subscriptions, or change them.
    Feeds(TenantFeedsArgs),
}

#[derive(Args)]
pub struct TenantCreateArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// 2-40 characters of a-z, 0-9 and inner hyphens; it appears in URLs.
    #[arg(long)]
    pub slug: String,
    /// The name people see.
    #[arg(long)]
    pub name: String,
}

#[derive(Args)]
pub struct TenantListArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Args)]
pub struct TenantFeedsArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub feeds: FeedsArgs,
    /// The tenant (slug).
    pub slug: String,
    /// Subscribe the tenant to this feed (repeatable).
    #[arg(long)]
    pub subscribe: Vec<String>,
    /// End the tenant's subscription to this feed (repeatable).
    #[arg(long)]
    pub unsubscribe: Vec<String>,
}

#[derive(Args)]
pub struct DemoArgs {
    /// Where the demo keeps its database, secret key, admin token, sandbox state and mail.
    #[arg(long, env = "SKYBOOK_DATA_DIR", default_value = "./skybook-data")]
    pub data_dir: PathBuf,
    /// Address of the site and API.
    #[arg(long, env = "SKYBOOK_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Address of the in-process sandbox (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub sandbox_listen: String,
    /// Run the demo on this database instead of `<data-dir>/skybook.db`, e.g. postgres://...
    #[arg(long, env = "SKYBOOK_DATABASE_URL")]
    pub database_url: Option<String>,
    #[command(flatten)]
    pub feeds: FeedsArgs,
    #[command(flatten)]
    pub background: BackgroundArgs,
    #[command(flatten)]
    pub faults: FaultInjectionArgs,
}

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Address to listen on.
    #[arg(long, env = "SKYBOOK_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Keys the card fingerprints and cookie signing; shared by every node of one deployment (32+ characters).
    #[arg(long, env = "SKYBOOK_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    #[command(flatten)]
    pub payments: PaymentsArgs,
    #[command(flatten)]
    pub site: SiteArgs,
    /// How long one step of a booking keeps retrying a transient database error (a failover, a restart, a
    /// lost connection) before the request answers 503 and leaves the booking for a retry or the sentinel.
    #[arg(long, env = "SKYBOOK_DATABASE_RETRY_BUDGET", default_value = "10s")]
    pub database_retry_budget: String,
    /// How long a booking's seats stay held while its payment is unresolved; the sentinel releases them after.
    #[arg(long, env = "SKYBOOK_SEAT_HOLD", default_value = "15m")]
    pub seat_hold: String,
    /// Run the web server only, without background workers.
    #[arg(long)]
    pub no_workers: bool,
    /// At SIGTERM: how long until the process exits at the latest (requests in flight finish within it; set
    /// the pod's terminationGracePeriodSeconds a little above).
    #[arg(long, env = "SKYBOOK_SHUTDOWN_GRACE", default_value = "25s")]
    pub shutdown_grace: String,
    /// At SIGTERM: how long readiness is off while new requests are still served, for the load balancer to
    /// stop sending them (part of the grace period).
    #[arg(long, env = "SKYBOOK_SHUTDOWN_DRAIN", default_value = "5s")]
    pub shutdown_drain: String,
    /// Serve `/metrics` on this address instead of the main listener (bind it where only the scraper
    /// reaches, e.g. a port the public Service does not expose).
    #[arg(long, env = "SKYBOOK_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Booking lookups (API reads, "find my booking") one client may make per minute (and at once).
    #[arg(long, env = "SKYBOOK_LOOKUPS_PER_MINUTE", default_value = "30")]
    pub lookups_per_minute: String,
    /// Admin token presentations (sign-in form, `Bearer`) one client may make per minute (and at once).
    #[arg(long, env = "SKYBOOK_ADMIN_ATTEMPTS_PER_MINUTE", default_value = "30")]
    pub admin_attempts_per_minute: String,
    /// `/metrics` on the main listener answers only `Authorization: Bearer <token>` (16+ characters).
    /// Without this or --metrics-listen, `/metrics` is closed.
    #[arg(long, env = "SKYBOOK_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    #[command(flatten)]
    pub background: BackgroundArgs,
    #[command(flatten)]
    pub faults: FaultInjectionArgs,
    #[command(flatten)]
    pub feeds: FeedsArgs,
    #[command(flatten)]
    pub feed_source: FeedSourceArgs,
}

/// Crash-test hooks, the same for every command that serves HTTP or runs workers (CONTRACT.md).
#[derive(Args)]
pub struct FaultInjectionArgs {
    /// `1`: mount `POST /debug/panic` and register the `debug.slow` job kind, for crash tests. Never in production.
    #[arg(long, env = "SKYBOOK_ENABLE_FAULT_INJECTION", hide = true)]
    pub enable_fault_injection: Option<String>,
}

#[derive(Args)]
pub struct DatabaseArgs {
    /// sqlite://path/to/file.db or postgres://user@host/db
    #[arg(long, env = "SKYBOOK_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Most connections this process opens to PostgreSQL (SQLite: most readers). Default 8.
    #[arg(long, env = "SKYBOOK_DATABASE_MAX_CONNECTIONS")]
    pub database_max_connections: Option<String>,
}

#[derive(Args)]
pub struct SiteArgs {
    /// The tenant whose flights the website sells.
    #[arg(long, env = "SKYBOOK_SITE_TENANT", default_value = "demo")]
    pub site_tenant: String,
    /// Session cookies without `Secure`, for plain-HTTP development (`demo` sets this).
    #[arg(long)]
    pub insecure_cookies: bool,
    /// A website session unused this long expires: a number with s, m, h or d.
    #[arg(long, env = "SKYBOOK_SESSION_IDLE_TIMEOUT", default_value = "30d")]
    pub session_idle_timeout: String,
    /// A website session this old expires however busy it is: a number with s, m, h or d.
    #[arg(long, env = "SKYBOOK_SESSION_ABSOLUTE_TIMEOUT", default_value = "90d")]
    pub session_absolute_timeout: String,
    /// Token for `/admin` (Bearer header or the sign-in form); 16+ characters. Without it admin is closed.
    #[arg(long, env = "SKYBOOK_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
}

#[derive(Args)]
pub struct PaymentsArgs {
    /// Base URL of the payment provider (or of the auth proxy in front of it).
    #[arg(long, env = "SKYBOOK_PAYMENTS_URL")]
    pub payments_url: Option<String>,
    /// OAuth2 token endpoint; with client id and secret, skybook fetches its own tokens.
    #[arg(long, env = "SKYBOOK_PAYMENTS_TOKEN_URL")]
    pub payments_token_url: Option<String>,
    #[arg(long, env = "SKYBOOK_PAYMENTS_CLIENT_ID")]
    pub payments_client_id: Option<String>,
    #[arg(long, env = "SKYBOOK_PAYMENTS_CLIENT_SECRET", hide_env_values = true)]
    pub payments_client_secret: Option<String>,
}

/// The partners' feed endpoint, for imports by date (the command line's `--date` and the nightly schedules).
#[derive(Args)]
pub struct FeedSourceArgs {
    /// Base URL of the feed endpoint (`GET <url>/feeds/{tenant}/{feed}?date=`), or of the auth proxy in front.
    #[arg(long, env = "SKYBOOK_FEEDS_URL")]
    pub feeds_url: Option<String>,
    /// OAuth2 token endpoint; with client id and secret, skybook fetches its own tokens.
    #[arg(long, env = "SKYBOOK_FEEDS_TOKEN_URL")]
    pub feeds_token_url: Option<String>,
    #[arg(long, env = "SKYBOOK_FEEDS_CLIENT_ID")]
    pub feeds_client_id: Option<String>,
    #[arg(long, env = "SKYBOOK_FEEDS_CLIENT_SECRET", hide_env_values = true)]
    pub feeds_client_secret: Option<String>,
}

#[derive(Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Apply nothing: exit 0 when the schema is current, non-zero naming each pending migration (for an init
    /// container or a CI gate).
    #[arg(long)]
    pub check: bool,
}

#[derive(Args)]
pub struct SandboxArgs {
    #[arg(long, default_value = "127.0.0.1:7000")]
    pub listen: String,
    /// Where `sandbox.db` lives.
    #[arg(long, default_value = "./sandbox-data")]
    pub data_dir: PathBuf,
    /// Lifetime of issued access tokens, in seconds.
    #[arg(long, default_value = "3600")]
    pub token_ttl: String,
    /// The OAuth2 client the token endpoint accepts, as ID:SECRET.
    #[arg(
        long,
        default_value = "skybook:sandbox-secret",
        hide_default_value = true
    )]
    pub client: String,
    /// A client that authenticates with a signed JWT (`private_key_jwt`), as ID:PUBLIC_KEY_PEM_FILE. Repeatable.
    #[arg(long = "client-jwt")]
    pub client_jwt: Vec<String>,
}

#[derive(Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// How long one step of a booking keeps retrying a transient database error (a failover, a restart, a
    /// lost connection) before the request answers 503 and leaves the booking for a retry or the sentinel.
    #[arg(long, env = "SKYBOOK_DATABASE_RETRY_BUDGET", default_value = "10s")]
    pub database_retry_budget: String,
    /// The deployment's secret key (as for `serve`).
    #[arg(long, env = "SKYBOOK_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    #[command(flatten)]
    pub payments: PaymentsArgs,
    #[command(flatten)]
    pub background: BackgroundArgs,
    #[command(flatten)]
    pub faults: FaultInjectionArgs,
    /// At SIGTERM: the longest the process takes to exit (work still running then is cut off, resumable).
    #[arg(long, env = "SKYBOOK_SHUTDOWN_GRACE", default_value = "25s")]
    pub shutdown_grace: String,
    #[command(flatten)]
    pub feeds: FeedsArgs,
    #[command(flatten)]
    pub feed_source: FeedSourceArgs,
}

/// The background workers' settings: email, alerts, the sentinel.
#[derive(Args)]
pub struct BackgroundArgs {
    /// SMTP server for emails: smtp://host:port (plain), smtp://host:port?tls=required (STARTTLS),
    /// smtps://host:port; user:password@ authenticates. `demo` without it writes .eml files to the data dir's mail folder.
    #[arg(long, env = "SKYBOOK_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The From of every email.
    #[arg(
        long,
        env = "SKYBOOK_MAIL_FROM",
        default_value = "skybook <bookings@skybook.invalid>"
    )]
    pub mail_from: String,
    /// Alerts are POSTed here as Slack-compatible JSON ({"text": ...}).
    #[arg(long, env = "SKYBOOK_ALERT_WEBHOOK_URL", hide_env_values = true)]
    pub alert_webhook_url: Option<String>,
    /// Alerts are mailed to this address.
    #[arg(long, env = "SKYBOOK_OPS_EMAIL")]
    pub ops_email: Option<String>,
    /// When the sentinel sweeps: cron with an optional seconds field. Default every minute (`demo`: every 5 s).
    #[arg(long, env = "SKYBOOK_SENTINEL_SCHEDULE")]
    pub sentinel_schedule: Option<String>,
    /// The sentinel settles a booking only once nothing touched it for this long (past any live request).
    #[arg(long, env = "SKYBOOK_SENTINEL_SETTLE_AFTER", default_value = "90s")]
    pub sentinel_settle_after: String,
    /// Alert on a booking unresolved, or an email unsent, for this long.
    #[arg(long, env = "SKYBOOK_SENTINEL_ALERT_AFTER", default_value = "15m")]
    pub sentinel_alert_after: String,
    /// How long a claimed job is a worker's without a heartbeat (a dead worker's jobs are rescued after it).
    #[arg(long, env = "SKYBOOK_JOB_LEASE", default_value = "60s")]
    pub job_lease: String,
}

#[derive(Args)]
pub struct AuthProxyArgs {
    /// The proxy's TOML configuration (listen address and routes; see the README).
    #[arg(long, env = "SKYBOOK_AUTH_PROXY_CONFIG")]
    pub config: PathBuf,
    /// At SIGTERM: how long `/ready` is already 503 while requests are still forwarded, for callers to stop
    /// sending (then requests in flight finish).
    #[arg(long, env = "SKYBOOK_SHUTDOWN_DRAIN", default_value = "5s")]
    pub shutdown_drain: String,
    /// At SIGTERM: the longest the process takes to exit (work still running then is cut off, resumable).
    #[arg(long, env = "SKYBOOK_SHUTDOWN_GRACE", default_value = "25s")]
    pub shutdown_grace: String,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        super::Cli::command().debug_assert();
    }
}
