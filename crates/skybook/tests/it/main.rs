//! The `skybook` binary as operators run it: real processes, real ports.

mod admin_live;
mod admin_ops;
mod auth_proxy;
mod browser;
mod chrome;
mod cli;
mod deploy;
mod failover;
mod hardening;
mod import_cli;
mod import_cron;
mod multi_node;
mod outage;
mod process;
mod recovery;
mod rollout;
mod schemathesis;
mod shutdown;
mod worker;
