//! Structured logs: text for people, JSON lines for aggregators. `RUST_LOG` filters (default `info`). The
//! services (`serve`, `worker`, ...) log to stdout; the operator's commands (`import`, `tenant`) to stderr, as
//! their stdout is their answer (`skybook import rejects RUN > fix.csv`).
//! Nothing logged anywhere in skybook carries a card number, token or secret; request logs carry the request id.

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

pub fn init(format: LogFormat, to_stderr: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let writer =
        tracing_subscriber::fmt::writer::BoxMakeWriter::new(move || -> Box<dyn std::io::Write> {
            if to_stderr {
                Box::new(std::io::stderr())
            } else {
                Box::new(std::io::stdout())
            }
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
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
