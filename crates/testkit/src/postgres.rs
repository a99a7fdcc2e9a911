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

/// How the standby of a [`ReplicatedPostgres`] follows its primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replication {
    /// A commit returns once the standby has flushed it.
    Synchronous,
    /// A commit returns at once; the standby follows when it can.
    Asynchronous,
}

/// A primary and a streaming standby on loopback (`pg_start_replicated` in `scripts/pg.sh`), each stopped when
/// dropped. The failover tests reach them through a [`crate::forwarder::Forwarder`].
pub struct ReplicatedPostgres {
    dir: PathBuf,
    pub primary_port: u16,
    pub standby_port: u16,
}

impl ReplicatedPostgres {
    pub fn start(dir: &Path, replication: Replication) -> Self {
        let mode = match replication {
            Replication::Synchronous => "sync",
            Replication::Asynchronous => "async",
        };
        let mut last_error = String::new();
        for _ in 0..10 {
            let [primary, standby] =
                [0, 1].map(|_| PORTS.start + (rand::random::<u16>() % (PORTS.end - PORTS.start)));
            if primary == standby
                || [primary, standby]
                    .iter()
                    .any(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_err())
            {
                continue;
            }
            let script = format!(
                "PG_PORT={primary} PG_STANDBY_PORT={standby} pg_start_replicated \"$PG_DIR\" {mode} >/dev/null"
            );
            match try_run(&script, dir) {
                Ok(_) => {
                    return Self {
                        dir: dir.to_owned(),
                        primary_port: primary,
                        standby_port: standby,
                    }
                }
                Err(e) => last_error = e,
            }
        }
        panic!("could not start a replicated PostgreSQL: {last_error}")
    }

    pub fn primary_addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.primary_port).into()
    }

    pub fn standby_addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.standby_port).into()
    }

    /// A superuser URL to the `postgres` database at `addr` (the forwarder's, or a server's own).
    pub fn url_at(addr: std::net::SocketAddr) -> String {
        format!("postgres://postgres@{addr}/postgres")
    }

    /// SIGKILLs the primary, postmaster and backends at once.
    pub fn kill_primary(&self) {
        run("pg_kill \"$PG_DIR/primary\"", &self.dir);
    }

    /// Promotes the standby; returns once it takes writes.
    pub fn promote_standby(&self) {
        run("pg_promote \"$PG_DIR/standby\"", &self.dir);
    }

    /// Lets the standby catch up, then cuts its replication: what the primary commits from now on, the standby
    /// never gets.
    pub fn detach_standby(&self) {
        run(
            &format!(
                "pg_detach_standby {} {}",
                self.primary_port, self.standby_port
            ),
            &self.dir,
        );
    }
}

/// One of the two servers of a [`ReplicatedPostgres`], named by the directory it started in: the two trade roles
/// at every failover, so a soak that fails over again and again tracks which one is the primary now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member {
    /// Started as the primary (`<dir>/primary`).
    First,
    /// Started as the standby (`<dir>/standby`).
    Second,
}

impl Member {
    pub fn other(self) -> Self {
        match self {
            Self::First => Self::Second,
            Self::Second => Self::First,
        }
    }

    fn dir(self) -> &'static str {
        match self {
            Self::First => "primary",
            Self::Second => "standby",
        }
    }
}

/// Role-free operations for soaks that fail over repeatedly. Each returns `scripts/pg.sh`'s complaint instead
/// of panicking: a soak reports a fault that could not be injected, it does not abort.
impl ReplicatedPostgres {
    pub fn port_of(&self, member: Member) -> u16 {
        match member {
            Member::First => self.primary_port,
            Member::Second => self.standby_port,
        }
    }

    pub fn addr_of(&self, member: Member) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.port_of(member)).into()
    }

    /// SIGKILLs `member`'s postmaster and backends.
    pub fn kill(&self, member: Member) -> Result<(), String> {
        try_run(&format!("pg_kill \"$PG_DIR/{}\"", member.dir()), &self.dir).map(drop)
    }

    /// Promotes `member` (a standby); returns once it takes writes.
    pub fn promote(&self, member: Member) -> Result<(), String> {
        try_run(
            &format!("pg_promote \"$PG_DIR/{}\"", member.dir()),
            &self.dir,
        )
        .map(drop)
    }

    /// Restarts `member` with a fast shutdown (`pg_restart`).
    pub fn restart(&self, member: Member) -> Result<(), String> {
        try_run(
            &format!("PG_DIR=\"$PG_DIR/{}\" pg_restart", member.dir()),
            &self.dir,
        )
        .map(drop)
    }

    /// Discards `standby`'s server and data and rebuilds it as a streaming standby of the other member, the
    /// primary (`pg_reseed_standby`); synchronous if `replication` says so, once it streams.
    pub fn reseed_standby(&self, standby: Member, replication: Replication) -> Result<(), String> {
        let mode = match replication {
            Replication::Synchronous => "sync",
            Replication::Asynchronous => "async",
        };
        try_run(
            &format!(
                "pg_reseed_standby \"$PG_DIR/{}\" {} {mode}",
                standby.dir(),
                self.port_of(standby.other())
            ),
            &self.dir,
        )
        .map(drop)
    }
}

impl Drop for ReplicatedPostgres {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| {
            for server in ["primary", "standby"] {
                let _ = try_run(&format!("PG_DIR=\"$PG_DIR/{server}\" pg_stop"), &self.dir);
            }
        });
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| self.stop());
    }
}
