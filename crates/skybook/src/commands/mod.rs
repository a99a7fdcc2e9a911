//! One module per subcommand.

mod admin;
mod auth_proxy;
mod demo;
mod import;
mod migrate;
mod sandbox;
mod serve;
mod tenant;
mod worker;

use anyhow::Result;

use crate::cli::Command;

pub async fn run(command: Command) -> Result<()> {
    match command {
        Command::Demo(args) => demo::run(args).await,
        Command::Serve(args) => serve::run(*args).await,
        Command::Migrate(args) => migrate::run(args).await,
        Command::Sandbox(args) => sandbox::run(args).await,
        Command::AuthProxy(args) => auth_proxy::run(args).await,
        Command::Worker(args) => worker::run(*args).await,
        Command::Import(command) => import::run(command).await,
        Command::Tenant(command) => tenant::run(command).await,
        Command::Admin(command) => admin::run(command).await,
    }
}
