//! Crash capture: every panic becomes a stored crash report, grouped by fingerprint, with an alert for each
//! new group.
//!
//! One process-wide panic hook ([`install_panic_hook`]) sees every panic with its message, location and a
//! backtrace, and logs it. What happens next depends on where it happened:
//! - **Inside a request** (the web layer runs each request inside [`in_request`], and the booking pipeline's
//!   own task inherits it through [`propagate`]): the hook files the report, with the request's id, method,
//!   route and tenant, under the request id. The web layer catches the unwind around the request, takes the
//!   report with [`take_request_panic`] and records it with [`record`] on its own store; the panic then
//!   becomes a 500 carrying the request id.
//! - **Anywhere else** (a spawned task, a background loop): the hook sends the report to the process's
//!   background recorder, if [`record_background_panics`] started one, which stores it the same way.
//!
//! Either way the panic itself unwinds as usual: the supervisor restarts a background loop, a spawned task's
//! join handle reports it, a request gets its 500. When `SKYBOOK_SENTRY_DSN` is set the binary also forwards
//! panics to Sentry (its hook wraps this one).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, OnceLock};

use chrono::Utc;
use sha2::{Digest, Sha256};
use skybook_storage::{NewAlert, NewCrash, Store};
use tokio::sync::mpsc;

/// What a request contributes to a crash report.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub request_id: Option<String>,
    pub method: Option<String>,
    /// The matched route template (`/api/v1/tenants/{tenant}/bookings`), never the raw path.
    pub route: Option<String>,
    pub tenant: Option<String>,
}

tokio::task_local! {
    static REQUEST: RequestContext;
}

/// Panics inside requests, by request id, left by the hook for the request's own panic handling (which may run
/// on another thread than the panic did).
static REQUEST_PANICS: Mutex<Option<HashMap<String, NewCrash>>> = Mutex::new(None);

/// More unclaimed reports than this (panics in requests whose unwind nobody caught) are dropped.
const MAX_UNCLAIMED: usize = 256;

/// The process's background recorder, when one runs.
static BACKGROUND: OnceLock<mpsc::UnboundedSender<NewCrash>> = OnceLock::new();

/// The build that crashed, stored with every report.
pub const RELEASE: &str = concat!("skybook ", env!("CARGO_PKG_VERSION"));

/// The most of a panic message a report keeps, in bytes. A message can carry a whole value's `Debug`; the
/// first 2 KB say what went wrong.
pub const MAX_MESSAGE_BYTES: usize = 2 * 1024;
/// The most of a backtrace a report keeps, in bytes. A full one ran to about 77 KB, mostly the runtime's
/// frames at the bottom; the top 16 KB hold the panic and the frames of the code that called it.
pub const MAX_BACKTRACE_BYTES: usize = 16 * 1024;
/// How long crash reports are kept (the binary's housekeeping prunes older ones). A group's count outlives
/// them.
pub const REPORT_RETENTION: chrono::TimeDelta = chrono::TimeDelta::days(30);

/// Runs `future` as a request: a panic inside it is reported with `context`.
pub async fn in_request<F: Future>(context: RequestContext, future: F) -> F::Output {
    REQUEST.scope(context, future).await
}

/// `future` with the current request's context, for work a request spawns onto another task: a panic there
/// is still reported as the request's.
pub fn propagate<F: Future>(future: F) -> impl Future<Output = F::Output> {
    let context = REQUEST.try_with(Clone::clone).ok();
    async move {
        match context {
            Some(context) => REQUEST.scope(context, future).await,
            None => future.await,
        }
    }
}

/// Installs the panic hook (once per process; later calls do nothing). The hook it replaces (Rust's default,
/// which prints the panic to stderr) still runs after ours.
pub fn install_panic_hook() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            on_panic(info);
            previous(info);
        }));
    });
}

fn on_panic(info: &std::panic::PanicHookInfo<'_>) {
    let message = skybook_domain::panic_message(info.payload());
    let location = info
        .location()
        .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
        .unwrap_or_else(|| "unknown".to_owned());
    let backtrace = std::backtrace::Backtrace::force_capture().to_string();
    let request = REQUEST.try_with(Clone::clone).ok();
    let thread = std::thread::current();
    let crash = NewCrash {
        // Of the whole message, so a cut does not merge two bugs that differ only past it.
        fingerprint: fingerprint(&message, &location),
        task: match request {
            Some(_) => None,
            None => Some(thread.name().unwrap_or("unnamed thread").to_owned()),
        },
        route: request.as_ref().and_then(|r| r.route.clone()),
        method: request.as_ref().and_then(|r| r.method.clone()),
        tenant: request.as_ref().and_then(|r| r.tenant.clone()),
        request_id: request.as_ref().and_then(|r| r.request_id.clone()),
        message: truncated(message, MAX_MESSAGE_BYTES),
        location,
        backtrace: truncated(backtrace, MAX_BACKTRACE_BYTES),
        release: RELEASE.to_owned(),
    };
    tracing::error!(
        panic.message = %crash.message,
        panic.location = %crash.location,
        request_id = crash.request_id.as_deref().unwrap_or("-"),
        route = crash.route.as_deref().unwrap_or("-"),
        task = crash.task.as_deref().unwrap_or("-"),
        "panic"
    );
    metrics::counter!("skybook_panics_total").increment(1);
    match &crash.request_id {
        Some(id) => {
            let mut panics = REQUEST_PANICS.lock().unwrap_or_else(|e| e.into_inner());
            let panics = panics.get_or_insert_with(HashMap::new);
            if panics.len() >= MAX_UNCLAIMED {
                panics.clear();
            }
            panics.insert(id.clone(), crash);
        }
        None => {
            if let Some(background) = BACKGROUND.get() {
                let _ = background.send(crash);
            }
        }
    }
}

/// The report of the panic in request `request_id`, if the hook saw one (taken: a second call gets `None`).
pub fn take_request_panic(request_id: &str) -> Option<NewCrash> {
    let mut panics = REQUEST_PANICS.lock().unwrap_or_else(|e| e.into_inner());
    panics.as_mut()?.remove(request_id)
}

/// Stores panics outside requests in `store` for the rest of the process's life. The first call wins; the
/// recorder runs on the current runtime.
pub fn record_background_panics(store: Store) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    if BACKGROUND.set(tx).is_err() {
        return;
    }
    tokio::spawn(async move {
        while let Some(crash) = rx.recv().await {
            if let Err(e) = record(&store, &crash).await {
                tracing::error!(error = %skybook_domain::ErrorChain(&e), "could not store a crash report");
            }
        }
    });
}

/// Stores the report. A crash group seen for the first time raises a `crash` alert, and one reaching 10, 100,
/// 1000, ... crashes a `crash_spike` alert, so a bug that starts firing constantly is told, not just counted.
pub async fn record(store: &Store, crash: &NewCrash) -> Result<(), skybook_storage::StorageError> {
    let now = Utc::now();
    let count = store.record_crash(crash, now).await?;
    let alert = match count {
        1 => Some((
            "crash",
            crash.fingerprint.clone(),
            format!("new crash: {} at {}", crash.message, crash.location),
        )),
        n if n >= 10 && is_power_of_ten(n) => Some((
            "crash_spike",
            format!("{}:{n}", crash.fingerprint),
            format!(
                "crash seen {n} times: {} at {}",
                crash.message, crash.location
            ),
        )),
        _ => None,
    };
    if let Some((kind, subject, message)) = alert {
        let alert = NewAlert {
            kind,
            subject,
            tenant_id: None,
            message,
            details: serde_json::json!({
                "fingerprint": crash.fingerprint,
                "request_id": crash.request_id,
                "route": crash.route,
                "task": crash.task,
                "release": crash.release,
                "count": count,
            }),
        };
        store.raise_alert(&alert, now).await?;
    }
    Ok(())
}

/// `text` cut to at most `max` bytes on a character boundary, ending with a marker that says how much was
/// cut (so a reader knows the report is partial); unchanged when it fits.
fn truncated(mut text: String, max: usize) -> String {
    /// Room kept for the marker: its text and a byte count of up to 20 digits.
    const MARKER_ROOM: usize = 48;
    if text.len() <= max {
        return text;
    }
    let mut keep = max.saturating_sub(MARKER_ROOM);
    while !text.is_char_boundary(keep) {
        keep -= 1;
    }
    let cut = text.len() - keep;
    text.truncate(keep);
    text.push_str(&format!("\n[... {cut} more bytes cut]"));
    text
}

fn is_power_of_ten(mut n: i64) -> bool {
    while n >= 10 && n % 10 == 0 {
        n /= 10;
    }
    n == 1
}

/// Groups crashes of one bug: the location, and the message with its numbers blanked (ids and counts vary
/// between occurrences of the same bug).
pub fn fingerprint(message: &str, location: &str) -> String {
    let mut template = String::with_capacity(message.len());
    let mut in_number = false;
    for c in message.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                template.push('#');
            }
            in_number = true;
        } else {
            template.push(c);
            in_number = false;
        }
    }
    let digest = Sha256::digest(format!("{location}\n{template}").as_bytes());
    hex::encode(&digest[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_ignore_numbers_but_not_locations() {
        let a = fingerprint("index 3 out of range for length 2", "src/a.rs:1:1");
        assert_eq!(
            a,
            fingerprint("index 17 out of range for length 4", "src/a.rs:1:1")
        );
        assert_ne!(
            a,
            fingerprint("index 3 out of range for length 2", "src/b.rs:1:1")
        );
        assert_ne!(a, fingerprint("something else", "src/a.rs:1:1"));
        assert_eq!(a.len(), 16);
    }

    #[test]
    fn long_messages_and_backtraces_are_cut_on_a_character_boundary() {
        assert_eq!(truncated("short".to_owned(), 10), "short");
        let exact = "x".repeat(MAX_MESSAGE_BYTES);
        assert_eq!(truncated(exact.clone(), MAX_MESSAGE_BYTES), exact);

        // 3-byte characters, so most cut points fall inside one.
        let backtrace = "€".repeat(80 * 1024 / 3);
        let kept = truncated(backtrace.clone(), MAX_BACKTRACE_BYTES);
        assert!(kept.len() <= MAX_BACKTRACE_BYTES, "{} bytes", kept.len());
        assert!(
            kept.len() > MAX_BACKTRACE_BYTES - 64,
            "{} bytes",
            kept.len()
        );
        let (head, marker) = kept.rsplit_once('\n').unwrap();
        assert!(backtrace.starts_with(head), "the top is kept");
        assert_eq!(
            marker,
            format!("[... {} more bytes cut]", backtrace.len() - head.len())
        );

        let message = format!("bad value {}", "é".repeat(5000));
        assert!(truncated(message, MAX_MESSAGE_BYTES).len() <= MAX_MESSAGE_BYTES);
    }

    #[test]
    fn spikes_are_told_at_each_power_of_ten() {
        let spikes: Vec<i64> = (1..=2000)
            .filter(|&n| n >= 10 && is_power_of_ten(n))
            .collect();
        assert_eq!(spikes, [10, 100, 1000]);
    }
}
