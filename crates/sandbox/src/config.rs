//! How a sandbox is set up: where its state lives, which OAuth2 clients it accepts and how long the
//! access tokens it issues stay valid. Kept apart from the server so the `skybook` binary can build
//! one from its command line (`--data-dir`, `--token-ttl`, `--client`, `--client-jwt`) without
//! knowing anything else about the sandbox.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

pub use crate::feeds::Timetable;
pub use crate::jwt::{JwtClientError, JwtPublicKey};

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
    /// Clients authenticating with `private_key_jwt` (RFC 7523 client assertions): client id →
    /// the public key their assertions must be signed with (RSA → `RS256`, EC P-256 → `ES256`).
    /// Empty unless configured; the secret client above is accepted either way.
    pub jwt_clients: BTreeMap<String, JwtPublicKey>,
    /// Tenants whose partner publishes a fixed timetable (the demo's): their flights file is the
    /// timetable's window from the feed's date, not generated flights. Empty unless configured.
    pub timetables: BTreeMap<String, Arc<Timetable>>,
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
            jwt_clients: BTreeMap::new(),
            timetables: BTreeMap::new(),
        }
    }

    /// The same settings, with `tenant`'s flights feed publishing `timetable`.
    pub fn with_timetable(mut self, tenant: impl Into<String>, timetable: Timetable) -> Self {
        self.timetables.insert(tenant.into(), Arc::new(timetable));
        self
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

    /// The same settings plus a `private_key_jwt` client `id` whose assertions are signed by the
    /// private half of `public_key_pem` (an RSA or EC P-256 public key, PEM: `PUBLIC KEY` or
    /// `RSA PUBLIC KEY`). Registering an id again replaces its key.
    pub fn with_jwt_client(
        mut self,
        id: impl Into<String>,
        public_key_pem: &str,
    ) -> Result<Self, JwtClientError> {
        let id = id.into();
        if id.is_empty() {
            return Err(JwtClientError::EmptyClientId);
        }
        let key = JwtPublicKey::from_pem(public_key_pem)?;
        self.jwt_clients.insert(id, key);
        Ok(self)
    }

    /// [`with_jwt_client`](Self::with_jwt_client) from a command-line value `ID:PUBLIC_KEY_PEM_FILE`
    /// (split at the first `:`), reading the PEM file.
    pub fn with_jwt_client_arg(self, arg: &str) -> Result<Self, JwtClientError> {
        let (id, path) = arg
            .split_once(':')
            .filter(|(id, path)| !id.is_empty() && !path.is_empty())
            .ok_or_else(|| JwtClientError::BadArgument(arg.to_owned()))?;
        let pem =
            std::fs::read_to_string(Path::new(path)).map_err(|source| JwtClientError::ReadKey {
                path: PathBuf::from(path),
                source,
            })?;
        self.with_jwt_client(id, &pem)
    }

    /// Path of the SQLite database holding the sandbox's state.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("sandbox.db")
    }
}
