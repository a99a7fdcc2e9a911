//! Per-client throttles on what can be guessed: presenting the admin token (sign-in form or `Bearer`), and
//! looking a booking up by its reference (the API's booking read, the website's "find my booking").
//!
//! Each is a keyed GCRA limiter (governor) by client IP, checked *before* the guess is judged, so a client
//! over its quota learns nothing more until it waits: 429 with `Retry-After`. A bearer token is judged first and
//! counted only when wrong (scripts and dashboards present the right one on every request), but a client over
//! its quota is refused before anything is judged, the right token included. Limits are per node, which is
//! what a throttle needs (n nodes allow n times the rate: still far from a useful guessing rate). The client is
//! the TCP peer: behind a load balancer that is the balancer, so put the same limit at the edge too (see
//! docs/operations.md).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

/// How many attempts a client may make: `burst` at once, refilled at `per_minute`.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub per_minute: u32,
    pub burst: u32,
}

impl Limit {
    fn quota(self) -> Quota {
        let per_minute = NonZeroU32::new(self.per_minute.max(1)).expect("at least one");
        let burst = NonZeroU32::new(self.burst.max(1)).expect("at least one");
        Quota::per_minute(per_minute).allow_burst(burst)
    }
}

/// The throttles' settings.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleOptions {
    /// Admin token presentations: sign-in form posts, and wrong `Bearer` tokens (a right one does not count).
    pub admin_sign_in: Limit,
    /// Failed admin sign-ins beyond this rate raise an alert (once per client).
    pub admin_failures_alert: Limit,
    /// Booking lookups by reference (API reads, "find my booking").
    pub booking_lookup: Limit,
}

impl Default for ThrottleOptions {
    fn default() -> Self {
        Self {
            admin_sign_in: Limit {
                per_minute: 30,
                burst: 30,
            },
            admin_failures_alert: Limit {
                per_minute: 5,
                burst: 10,
            },
            booking_lookup: Limit {
                per_minute: 30,
                burst: 30,
            },
        }
    }
}

/// One throttle, shared by the handlers of one node: the limiter, and the clients it has refused until when (a
/// refused client is refused whatever it presents until then, the right token included).
#[derive(Clone)]
pub struct Throttle(
    Arc<DefaultKeyedRateLimiter<IpAddr>>,
    Arc<Mutex<HashMap<IpAddr, Instant>>>,
);

impl Throttle {
    pub fn new(limit: Limit) -> Self {
        Self(Arc::new(RateLimiter::keyed(limit.quota())), Arc::default())
    }

    /// Counts one attempt by `client`: `Err(429)` with the wait when it is over its quota.
    pub fn attempt(&self, client: Client) -> Result<(), ApiError> {
        self.refuse_while_blocked(client)?;
        self.0.check_key(&client.0).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            self.1
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(client.0, Instant::now() + wait);
            ApiError::TooManyRequests {
                retry_after_secs: wait.as_secs().max(1),
            }
        })
    }

    /// `Err(429)` while `client` is refused (an attempt of its went over the quota), without counting anything:
    /// checked before a bearer token is judged, whose presentation counts only when it is wrong
    /// ([`Self::attempt`] then).
    pub fn refuse_while_blocked(&self, client: Client) -> Result<(), ApiError> {
        let mut blocked = self.1.lock().unwrap_or_else(|e| e.into_inner());
        match blocked.get(&client.0) {
            Some(until) if *until > Instant::now() => Err(ApiError::TooManyRequests {
                retry_after_secs: (*until - Instant::now()).as_secs().max(1),
            }),
            Some(_) => {
                blocked.remove(&client.0);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Forgets clients whose quota is full again (called from time to time, so the map stays small).
    pub fn forget_idle(&self) {
        self.0.retain_recent();
        let now = Instant::now();
        self.1
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, until| *until > now);
    }
}

/// The node's throttles.
#[derive(Clone)]
pub struct Throttles {
    pub admin_sign_in: Throttle,
    pub admin_failures: Throttle,
    pub booking_lookup: Throttle,
}

impl Throttles {
    pub fn new(options: &ThrottleOptions) -> Self {
        Self {
            admin_sign_in: Throttle::new(options.admin_sign_in),
            admin_failures: Throttle::new(options.admin_failures_alert),
            booking_lookup: Throttle::new(options.booking_lookup),
        }
    }

    /// Empties the idle entries every minute while the process runs.
    pub fn spawn_housekeeping(&self) {
        let throttles = self.clone();
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    throttles.admin_sign_in.forget_idle();
                    throttles.admin_failures.forget_idle();
                    throttles.booking_lookup.forget_idle();
                }
            });
        }
    }
}

/// Who is asking: the TCP peer's address (unspecified when the router runs without one, as in-process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip()),
        ))
    }
}

impl Client {
    /// The client an address belongs to: an IPv4 address, or an IPv6 address's /64 (one subscriber's
    /// network, whose host half a client can change at will).
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Self(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => Self(IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_over_its_quota_is_told_when_to_come_back_and_others_are_not() {
        let throttle = Throttle::new(Limit {
            per_minute: 1,
            burst: 3,
        });
        let (a, b) = (
            Client("192.0.2.1".parse().unwrap()),
            Client("192.0.2.2".parse().unwrap()),
        );
        for _ in 0..3 {
            throttle.attempt(a).unwrap();
        }
        match throttle.attempt(a) {
            Err(ApiError::TooManyRequests { retry_after_secs }) => {
                assert!((1..=60).contains(&retry_after_secs), "{retry_after_secs}");
            }
            other => panic!("{other:?}"),
        }
        throttle
            .attempt(b)
            .expect("another client has its own quota");
    }
}
