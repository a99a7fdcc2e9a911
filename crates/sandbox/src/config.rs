//! How a sandbox is set up: where its state lives, which OAuth2 client it accepts and how long the
//! access tokens it issues stay valid. Kept apart from the server so the `skybook` binary can build
//! one from its command line (`--data-dir`, `--token-ttl`, `--client`) without knowing anything
//! else about the sandbox.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

/// Settings of one sandbox instance.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Directory holding `sandbox.db`; created if missing.
    pub data_dir: PathBuf,
    /// Lifetime of the access tokens `/oauth/token` issues (`expires_in`).
    pub token_ttl: Duration,
    /// The only OAuth2 client the token endpoint accepts.
    pub client_id: String,
    /// That client's secret. Never logged (`SecretString` redacts its `Debug`).
    pub client_secret: SecretString,
}

impl SandboxConfig {
    /// Client id accepted unless configured otherwise.
    pub const DEFAULT_CLIENT_ID: &'static str = "skybook";
    /// Client secret accepted unless configured otherwise.
    pub const DEFAULT_CLIENT_SECRET: &'static str = "sandbox-secret";
    /// Access-token lifetime unless configured otherwise.
    pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(3600);

    /// The defaults: client `skybook` / secret `sandbox-secret`, tokens valid for an hour.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            token_ttl: Self::DEFAULT_TOKEN_TTL,
            client_id: Self::DEFAULT_CLIENT_ID.to_owned(),
            client_secret: SecretString::from(Self::DEFAULT_CLIENT_SECRET),
        }
    }

    /// The same settings with another access-token lifetime.
    pub fn with_token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = ttl;
        self
    }

    /// The same settings with another accepted client.
    pub fn with_client(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.client_id = id.into();
        self.client_secret = SecretString::from(secret.into());
        self
    }

    /// Path of the SQLite database holding the sandbox's state.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("sandbox.db")
    }
}
