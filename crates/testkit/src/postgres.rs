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
    let output = Command::new("bash")
        .arg("-c")
        .arg(format!("set -e; source \"$0\"; PG_DIR=\"$1\"; {script}"))
        .arg(pg_sh())
        .arg(dir)
        .output()
        .expect("run bash");
    assert!(
        output.status.success(),
        "scripts/pg.sh: {script}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

impl PrivatePostgres {
    /// Initialises and starts a cluster under `dir` on a free port.
    pub fn start(dir: &Path) -> Self {
        let url = run("pg_start \"$PG_DIR\" && echo \"$PG_URL\"", dir);
        Self {
            dir: dir.to_owned(),
            url,
        }
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
