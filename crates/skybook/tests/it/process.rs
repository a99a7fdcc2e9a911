//! The testkit's process helpers, bound to this crate's binary.

pub use skybook_testkit::process::{run_to_end, Running};

pub fn skybook() -> std::process::Command {
    skybook_testkit::process::skybook(env!("CARGO_BIN_EXE_skybook"))
}

pub fn migrate(database_url: &str) {
    skybook_testkit::process::migrate(env!("CARGO_BIN_EXE_skybook"), database_url);
}
