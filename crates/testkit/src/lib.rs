//! Test support shared by the crates' integration tests.
//!
//! - Every test gets its own database: a fresh SQLite file, or a fresh PostgreSQL database created on the
//!   server named by `SKYBOOK_TEST_PG_URL` (the README's test command starts a throwaway cluster and sets it).
//! - Everything a test writes (database files, sandbox state, logs) goes under one data root
//!   (`SKYBOOK_TEST_DATA_DIR`, default `target/test-data`) and is kept, so the suite's last step can check
//!   that no card number reached any of it.
//! - [`backend_tests!`] turns one `async fn(Engine)` into a SQLite test and a PostgreSQL test.

use std::path::PathBuf;
use std::sync::Once;

use secrecy::SecretString;
use skybook_domain::SecretKey;
pub use skybook_storage::Engine;
use skybook_storage::{PoolSettings, Store};
use sqlx::Connection;

pub mod fixtures;
pub mod forwarder;
pub mod payments;
pub mod postgres;
pub mod process;
pub mod smtp;
pub mod stream;

/// Where tests keep their files.
pub fn data_root() -> PathBuf {
    std::env::var_os("SKYBOOK_TEST_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-data"))
}

/// A fresh directory for one test, named after it.
pub fn test_dir(name: &str) -> PathBuf {
    let dir = data_root()
        .join("files")
        .join(format!("{name}-{}", short_id()));
    std::fs::create_dir_all(&dir).expect("create test dir");
    dir
}

fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_owned()
}

/// Sends this process's logs (JSON, debug for skybook crates) to a file under the data root, once.
pub fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let dir = data_root().join("logs");
        std::fs::create_dir_all(&dir).expect("create log dir");
        let exe = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()));
        let path = dir.join(format!(
            "{}-{}.log",
            exe.unwrap_or_else(|| "test".into()),
            std::process::id()
        ));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open log file");
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "info,skybook=debug,skybook_booking=debug,tower_http=debug",
            ))
            .with_writer(std::sync::Mutex::new(file))
            .try_init();
    });
}

/// The PostgreSQL server for tests. Panics with what to do when it is not set: the PostgreSQL half of the
/// suite is not optional.
pub fn postgres_admin_url() -> String {
    std::env::var("SKYBOOK_TEST_PG_URL").unwrap_or_else(|_| {
        panic!("SKYBOOK_TEST_PG_URL is not set: run the suite with scripts/test (it starts a throwaway PostgreSQL)")
    })
}

/// A database URL for a brand-new, empty database.
pub async fn fresh_database_url(engine: Engine, name: &str) -> String {
    match engine {
        Engine::Sqlite => format!("sqlite://{}", test_dir(name).join("skybook.db").display()),
        Engine::Postgres => {
            let admin = postgres_admin_url();
            let db = format!(
                "t_{}_{}",
                name.chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .take(40)
                    .collect::<String>(),
                short_id()
            );
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("connect to the test PostgreSQL");
            sqlx::query(&format!("CREATE DATABASE \"{db}\""))
                .execute(&mut conn)
                .await
                .expect("create test database");
            conn.close().await.ok();
            let mut url = url_with_database(&admin, &db);
            url.push_str(if url.contains('?') { "&" } else { "?" });
            url.push_str("application_name=skybook-test");
            url
        }
    }
}

fn url_with_database(admin: &str, db: &str) -> String {
    let (base, query) = admin
        .split_once('?')
        .map_or((admin, None), |(b, q)| (b, Some(q)));
    let base = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// A migrated store on a fresh database.
pub async fn store(engine: Engine, name: &str) -> Store {
    store_at(&fresh_database_url(engine, name).await).await
}

/// A migrated store on `url` (for tests that hand the same URL to a `skybook` process).
pub async fn store_at(url: &str) -> Store {
    init_logging();
    let store = Store::connect(
        url,
        &PoolSettings {
            max_connections: 24,
            ..PoolSettings::default()
        },
    )
    .await
    .expect("connect");
    store.migrate().await.expect("migrate");
    store
}

/// Runs `sql` on a connection of its own to the database at `url`: an edit from outside skybook, as old data
/// or a manual fix would be.
pub async fn execute_outside(url: &str, sql: &str) -> Result<u64, sqlx::Error> {
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await?;
        Ok(sqlx::query(sql).execute(&mut c).await?.rows_affected())
    } else {
        let mut c = sqlx::PgConnection::connect(url).await?;
        Ok(sqlx::query(sql).execute(&mut c).await?.rows_affected())
    }
}

/// The secret key tests use.
pub fn secret_key() -> SecretKey {
    SecretKey::parse("test-secret-key-0123456789abcdef0123456789").unwrap()
}

/// A sandbox on an ephemeral loopback port with its state under the data root.
pub async fn sandbox(name: &str) -> skybook_sandbox::RunningSandbox {
    init_logging();
    let config = skybook_sandbox::SandboxConfig::new(test_dir(&format!("sandbox-{name}")));
    skybook_sandbox::spawn(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("start sandbox")
}

/// The sandbox's default client secret, as tests configure clients with it.
pub fn sandbox_client_secret() -> SecretString {
    SecretString::from("sandbox-secret")
}

/// Runs one `async fn(Engine)` as two tests, `sqlite` and `postgres`, in a module named after it.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    super::$name($crate::Engine::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    super::$name($crate::Engine::Postgres).await
                }
            }
        )*
    };
}
