//! Injected faults: the failures a real provider has on a bad day, switched on by tests and demos
//! through `POST /sandbox/faults` so skybook's retry, idempotency and fallback paths can be
//! exercised on purpose. Settings live in process memory only (a restart clears them), behind a
//! plain mutex that is never held across an `.await`.

use std::sync::Mutex;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::state::AppState;

/// Current fault settings, as `/sandbox/faults` and `/sandbox/stats` report them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Faults {
    /// The next n charge requests answer `500` before charging.
    pub fail_next_charges: u32,
    /// The next n charge responses are lost: the charge is committed, then the connection is
    /// dropped.
    pub lose_next_charge_responses: u32,
    /// Every charge declines.
    pub decline_all: bool,
    /// Every `/v1/*` response is delayed by this many milliseconds.
    pub latency_ms: u64,
    /// `/oauth/token` answers `503`.
    pub token_endpoint_down: bool,
    /// The next n feed requests answer `503` before anything else.
    pub fail_next_feeds: u32,
    /// Query parameters every feed request is answered as if it also had (its own win), e.g.
    /// `fault=zip_bomb`: the importer builds its feed URLs itself, so this is how a test reaches
    /// them. Empty: none.
    pub feed_query: String,
    /// Always `false`: `revoke_tokens` is a one-shot action (every access token issued so far is
    /// revoked when it is set), not a lasting setting. Reported so the settings list every key.
    pub revoke_tokens: bool,
}

/// A `POST /sandbox/faults` body: each given field replaces the current setting; an empty object
/// clears all.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsPatch {
    pub fail_next_charges: Option<u32>,
    pub lose_next_charge_responses: Option<u32>,
    pub decline_all: Option<bool>,
    pub latency_ms: Option<u64>,
    pub token_endpoint_down: Option<bool>,
    pub fail_next_feeds: Option<u32>,
    /// Checked by the handler (`controls::set_faults`) before it is applied.
    pub feed_query: Option<String>,
    /// `true` revokes every access token issued so far (done by the handler, see
    /// `controls::set_faults`); it changes no setting.
    pub revoke_tokens: Option<bool>,
}

impl FaultsPatch {
    fn is_empty(&self) -> bool {
        self.fail_next_charges.is_none()
            && self.lose_next_charge_responses.is_none()
            && self.decline_all.is_none()
            && self.latency_ms.is_none()
            && self.token_endpoint_down.is_none()
            && self.fail_next_feeds.is_none()
            && self.feed_query.is_none()
            && self.revoke_tokens.is_none()
    }
}

/// The shared, mutable fault settings.
#[derive(Debug, Default)]
pub struct FaultSwitch {
    faults: Mutex<Faults>,
}

impl FaultSwitch {
    fn lock(&self) -> std::sync::MutexGuard<'_, Faults> {
        // A panic while holding this lock cannot leave `Faults` half-updated (plain field stores),
        // so a poisoned lock is still good data.
        self.faults
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn current(&self) -> Faults {
        self.lock().clone()
    }

    /// Applies a patch (`{}` clears everything) and returns the resulting settings.
    pub fn apply(&self, patch: FaultsPatch) -> Faults {
        let mut faults = self.lock();
        if patch.is_empty() {
            *faults = Faults::default();
        } else {
            let current = std::mem::take(&mut *faults);
            *faults = Faults {
                fail_next_charges: patch.fail_next_charges.unwrap_or(current.fail_next_charges),
                lose_next_charge_responses: patch
                    .lose_next_charge_responses
                    .unwrap_or(current.lose_next_charge_responses),
                decline_all: patch.decline_all.unwrap_or(current.decline_all),
                latency_ms: patch.latency_ms.unwrap_or(current.latency_ms),
                token_endpoint_down: patch
                    .token_endpoint_down
                    .unwrap_or(current.token_endpoint_down),
                fail_next_feeds: patch.fail_next_feeds.unwrap_or(current.fail_next_feeds),
                feed_query: patch.feed_query.unwrap_or(current.feed_query),
                revoke_tokens: false,
            };
        }
        faults.clone()
    }

    /// Consumes one `fail_next_charges`, if any is left.
    pub fn take_charge_failure(&self) -> bool {
        take_one(&mut self.lock().fail_next_charges)
    }

    /// Consumes one `fail_next_feeds`, if any is left.
    pub fn take_feed_failure(&self) -> bool {
        take_one(&mut self.lock().fail_next_feeds)
    }

    pub fn feed_query(&self) -> String {
        self.lock().feed_query.clone()
    }

    /// Consumes one `lose_next_charge_responses`, if any is left.
    pub fn take_lost_response(&self) -> bool {
        take_one(&mut self.lock().lose_next_charge_responses)
    }

    pub fn decline_all(&self) -> bool {
        self.lock().decline_all
    }

    pub fn token_endpoint_down(&self) -> bool {
        self.lock().token_endpoint_down
    }

    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.lock().latency_ms)
    }
}

fn take_one(counter: &mut u32) -> bool {
    if *counter > 0 {
        *counter -= 1;
        true
    } else {
        false
    }
}

/// Middleware on `/v1/*`: runs the request, then holds the response back for `latency_ms`. Delaying
/// after the work (not before) is what a slow provider looks like to a client that times out: the
/// charge exists even though the client gave up waiting.
pub async fn inject_latency(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    let delay = state.faults.latency();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    response
}

/// Payload of the unwind that drops a connection for `lose_next_charge_responses`.
#[derive(Debug)]
pub struct LostResponse;

/// Drops the current connection without writing a response byte.
///
/// `axum::serve` runs each connection in its own task, so unwinding out of the handler ends that
/// task and closes its socket; `resume_unwind` (unlike `panic!`) does not run the panic hook, so
/// nothing is printed.
pub fn drop_connection() -> ! {
    std::panic::resume_unwind(Box::new(LostResponse))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_apply_on_top_and_empty_clears() {
        let switch = FaultSwitch::default();
        switch.apply(FaultsPatch {
            fail_next_charges: Some(2),
            ..Default::default()
        });
        let faults = switch.apply(FaultsPatch {
            decline_all: Some(true),
            ..Default::default()
        });
        assert_eq!(faults.fail_next_charges, 2);
        assert!(faults.decline_all);
        assert!(switch.take_charge_failure());
        assert!(switch.take_charge_failure());
        assert!(!switch.take_charge_failure());
        assert_eq!(switch.apply(FaultsPatch::default()), Faults::default());
    }
}
