//! What every handler shares: configuration, the database, the in-memory access-token cache, the
//! fault switch and the request counters that `/sandbox/stats` reports next to the database totals.

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::auth::TokenCache;
use crate::config::SandboxConfig;
use crate::faults::FaultSwitch;
use crate::ids::now_millis;
use crate::store::Store;

/// Cheaply clonable handle on the shared sandbox state.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

#[derive(Debug)]
pub struct Shared {
    pub config: SandboxConfig,
    pub store: Store,
    pub tokens: TokenCache,
    pub faults: FaultSwitch,
    pub counters: Counters,
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// Builds the state, loading the still-valid access tokens from the database into memory.
    pub async fn load(config: SandboxConfig, store: Store) -> anyhow::Result<Self> {
        let tokens = TokenCache::default();
        let live = store.live_access_tokens(now_millis()).await?;
        tokens.revoke_through(live.revoked_through);
        for token in live.tokens {
            tokens.insert(token.sha256, token.rowid, token.expires_at_ms);
        }
        let jwt_clients = config.jwt_clients.len();
        if jwt_clients > 0 {
            tracing::info!(jwt_clients, "private_key_jwt clients registered");
        }
        Ok(Self(Arc::new(Shared {
            config,
            store,
            tokens,
            faults: FaultSwitch::default(),
            counters: Counters::default(),
        })))
    }
}

/// Process-lifetime counters (they reset on restart; the database totals do not).
#[derive(Debug, Default)]
pub struct Counters {
    /// Every `POST /v1/charges` that reached the handler.
    pub charge_requests: AtomicU64,
    /// Charge requests answered with the charge already made under their key.
    pub idempotent_replays: AtomicU64,
    /// `POST /oauth/token` requests answered with an error.
    pub token_requests_failed: AtomicU64,
    /// Every `GET /feeds/...` that reached the handler, failed ones included.
    pub feed_requests: AtomicU64,
}

impl Counters {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn read(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
