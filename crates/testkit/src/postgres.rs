//! A private PostgreSQL cluster for a test that stops and restarts its database (the suite's shared cluster
//! must stay up for every other test). Driven through `scripts/pg.sh`, the same code as the suite's cluster.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A cluster of its own; stopped when dropped.
pub struct PrivatePostgres {
    dir: PathBuf,
    /// A superuser URL to its `postgres` database.
    pub url: String,
}

fn pg_sh() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg.sh")
}

fn run(script: &str, dir: &Path) -> String {
    try_run(script, dir).unwrap_or_else(|e| panic!("{e}"))
}

fn try_run(script: &str, dir: &Path) -> Result<String, String> {
    let output = Command::new("bash")
        .arg("-c")
        .arg(format!("set -e; source \"$0\"; PG_DIR=\"$1\"; {script}"))
        .arg(pg_sh())
        .arg(dir)
        .output()
        .expect("run bash");
    if !output.status.success() {
        return Err(format!(
            "scripts/pg.sh: {script}: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Ports below the kernel's ephemeral range (32768+ on Linux), so that while the server is stopped no
/// `bind(0)` elsewhere in the suite can be handed its port.
const PORTS: std::ops::Range<u16> = 20_000..32_000;

impl PrivatePostgres {
    /// Initialises and starts a cluster under `dir` on a free port (trying another if one is taken meanwhile).
    pub fn start(dir: &Path) -> Self {
        let mut last_error = String::new();
        for _ in 0..10 {
            let port = PORTS.start + (rand::random::<u16>() % (PORTS.end - PORTS.start));
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                continue;
            }
            let script = format!("PG_PORT={port} pg_start \"$PG_DIR\" && echo \"$PG_URL\"");
            match try_run(&script, dir) {
                Ok(url) => {
                    return Self {
                        dir: dir.to_owned(),
                        url,
                    }
                }
                Err(e) => last_error = e,
            }
        }
        panic!("could not start a private PostgreSQL: {last_error}")
    }

    /// Stops the server (fast shutdown: open connections are cut, as in a crash or failover).
    pub fn stop(&self) {
        run("pg_stop", &self.dir);
    }

    /// Starts it again on the same port.
    pub fn resume(&self) {
        run("pg_resume", &self.dir);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| self.stop());
    }
}
