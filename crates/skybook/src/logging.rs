//! Structured logs to stdout: text for people, JSON lines for aggregators. `RUST_LOG` filters (default `info`).
//! Nothing logged anywhere in skybook carries a card number, token or secret; request logs carry the request id.

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    match format {
        LogFormat::Text => builder.init(),
        // `spans` lists every open span, the current one last (request id first); a separate `span` field would
        // repeat the last of them on every line.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
    }
}
