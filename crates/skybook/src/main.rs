//! The `skybook` binary: parses configuration and wires the components together. No business logic lives here.

mod background;
mod cli;
mod commands;
mod config;
mod imports;
mod logging;
mod wiring;

use clap::Parser;

/// mimalloc: the proxy and the API allocate many small, short-lived buffers per request, where it is markedly
/// cheaper than glibc's allocator (see bench/README.md, the auth proxy).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let cli = cli::Cli::parse();
    let answers_on_stdout = matches!(
        cli.command,
        cli::Command::Import(_) | cli::Command::Tenant(_)
    );
    logging::init(cli.log_format, answers_on_stdout);
    // Every panic is logged and stored as a crash report; Sentry's hook, when configured, wraps ours.
    skybook_crash::install_panic_hook();
    let _sentry = match config::sentry(cli.sentry_dsn.as_deref()) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("skybook: error: {e:#}");
            std::process::exit(1);
        }
    };
    if let Err(e) = commands::run(cli.command).await {
        // One line naming what is wrong: config mistakes must be readable at a glance in a pod's log.
        eprintln!("skybook: error: {e:#}");
        std::process::exit(1);
    }
}
