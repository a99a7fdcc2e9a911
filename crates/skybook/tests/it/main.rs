//! The `skybook` binary as operators run it: real processes, real ports.

mod browser;
mod chrome;
mod cli;
mod multi_node;
mod process;
