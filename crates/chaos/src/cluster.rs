//! The deployment under test, all real processes: a PostgreSQL primary with a synchronous standby behind a
//! switchable read-write endpoint, two `skybook serve --no-workers` nodes, one `skybook worker`, the sandbox
//! and an SMTP server. It knows which member is the primary now, which URL each node serves on (the clients
//! read it per request, so a restarted node on a new port is found), and which exits it caused: any other is a
//! failure of the soak.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use skybook_testkit::forwarder::Forwarder;
use skybook_testkit::postgres::{Member, ReplicatedPostgres, Replication};
use skybook_testkit::process::{deployment, Running};
use skybook_testkit::smtp::SmtpSink;

/// How long a SIGTERMed process may take to exit (`SKYBOOK_SHUTDOWN_GRACE`).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);
/// The tenant the soak books for; also the website's tenant.
pub const TENANT: &str = "chaos";

/// The skybook processes the soak runs, by slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Serve(usize),
    Worker,
}

impl Slot {
    pub const ALL: [Slot; 3] = [Slot::Serve(0), Slot::Serve(1), Slot::Worker];

    fn index(self) -> usize {
        match self {
            Slot::Serve(i) => i,
            Slot::Worker => 2,
        }
    }

    pub fn name(self) -> String {
        match self {
            Slot::Serve(i) => format!("serve-{i}"),
            Slot::Worker => "worker".into(),
        }
    }
}

/// A skybook process that exited without the soak stopping it.
#[derive(Debug, Clone)]
pub struct Exit {
    pub process: String,
    pub code: Option<i32>,
    pub log: PathBuf,
}

/// The nodes' current URLs; `None` while a node is being started.
#[derive(Default)]
pub struct Nodes {
    urls: RwLock<[Option<String>; 2]>,
    next: AtomicUsize,
}

impl Nodes {
    /// A node to send the next request to, round robin over the nodes that have a URL; `avoid` (the node a
    /// request just failed on) is skipped when another one is there.
    pub fn pick(&self, avoid: Option<usize>) -> Option<(usize, String)> {
        let urls = self.urls.read().unwrap();
        let up: Vec<(usize, &String)> = urls
            .iter()
            .enumerate()
            .filter_map(|(i, u)| u.as_ref().map(|u| (i, u)))
            .collect();
        let preferred: Vec<&(usize, &String)> =
            up.iter().filter(|(i, _)| Some(*i) != avoid).collect();
        let choices = if preferred.is_empty() {
            up.iter().collect()
        } else {
            preferred
        };
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        choices
            .get(n % choices.len().max(1))
            .map(|(i, u)| (*i, (*u).clone()))
    }

    fn set(&self, node: usize, url: Option<String>) {
        self.urls.write().unwrap()[node] = url;
    }
}

/// Everything the soak started; processes are killed and the clusters stopped when it is dropped.
pub struct Cluster {
    pub exe: String,
    pub dir: PathBuf,
    pub pg: ReplicatedPostgres,
    primary: Mutex<Member>,
    pub endpoint: Forwarder,
    /// The database through the read-write endpoint.
    pub database_url: String,
    pub sandbox_url: String,
    sandbox: Mutex<Running>,
    pub smtp: SmtpSink,
    processes: Mutex<[Option<Running>; 3]>,
    /// Per slot, how many processes it has had (names each one's log).
    generations: [AtomicUsize; 3],
    pub nodes: Nodes,
    exits: Mutex<Vec<Exit>>,
    /// Failures of what the soak did itself (a fault that could not be injected, a SIGTERMed node that did not
    /// exit 0 in its grace period).
    pub incidents: Mutex<Vec<String>>,
}

impl Cluster {
    /// Starts PostgreSQL, the endpoint, the sandbox and the SMTP server, and migrates the database. The skybook
    /// processes come with [`Cluster::start_processes`], after the test data is in.
    pub async fn start(exe: &str, dir: PathBuf) -> anyhow::Result<Self> {
        let pg_dir = dir.join("pg");
        let pg = tokio::task::spawn_blocking(move || {
            ReplicatedPostgres::start(&pg_dir, Replication::Synchronous)
        })
        .await?;
        let endpoint = Forwarder::start(pg.primary_addr()).await;
        let database_url = ReplicatedPostgres::url_at(endpoint.addr);
        skybook_testkit::process::migrate(exe, &database_url);
        let mut cmd = skybook_testkit::process::skybook(exe);
        // Short-lived tokens, so skybook refreshes them during the soak and "token endpoint down" bites.
        cmd.args(["sandbox", "--listen", "127.0.0.1:0", "--token-ttl", "20"])
            .arg("--data-dir")
            .arg(dir.join("sandbox"));
        let sandbox = Running::start(cmd, &dir, "sandbox");
        let sandbox_url = sandbox.url_after("sandbox listening on");
        let smtp = SmtpSink::start(&dir);
        Ok(Self {
            exe: exe.to_owned(),
            dir,
            pg,
            primary: Mutex::new(Member::First),
            endpoint,
            database_url,
            sandbox_url,
            sandbox: Mutex::new(sandbox),
            smtp,
            processes: Mutex::new([None, None, None]),
            generations: Default::default(),
            nodes: Nodes::default(),
            exits: Mutex::default(),
            incidents: Mutex::default(),
        })
    }

    /// Starts both nodes and the worker.
    pub async fn start_processes(self: &Arc<Self>) -> anyhow::Result<()> {
        for slot in Slot::ALL {
            self.launch(slot).await.map_err(anyhow::Error::msg)?;
        }
        Ok(())
    }

    fn command(&self, slot: Slot) -> Command {
        let mut cmd = match slot {
            Slot::Serve(_) => {
                let mut cmd = deployment(&self.exe, "serve", &self.database_url, &self.sandbox_url);
                cmd.args([
                    "--listen",
                    "127.0.0.1:0",
                    "--no-workers",
                    "--insecure-cookies",
                ])
                .env("SKYBOOK_SITE_TENANT", TENANT)
                // Longer than any live request, so the sentinel never fails a booking one is still paying.
                .env("SKYBOOK_SEAT_HOLD", "90s");
                cmd
            }
            Slot::Worker => {
                let mut cmd =
                    deployment(&self.exe, "worker", &self.database_url, &self.sandbox_url);
                cmd.env("SKYBOOK_SMTP_URL", self.smtp.url())
                    .env("SKYBOOK_SENTINEL_SCHEDULE", "*/2 * * * * *")
                    .env("SKYBOOK_SENTINEL_SETTLE_AFTER", "5s")
                    // A SIGKILLed worker's jobs are rescued this long after its last heartbeat.
                    .env("SKYBOOK_JOB_LEASE", "20s")
                    // A line per sentinel sweep ("nothing to do" is DEBUG), to see how often it runs.
                    .env("RUST_LOG", "info,skybook_booking=debug");
                cmd
            }
        };
        cmd.env("SKYBOOK_SHUTDOWN_DRAIN", "1s").env(
            "SKYBOOK_SHUTDOWN_GRACE",
            format!("{}s", SHUTDOWN_GRACE.as_secs()),
        );
        cmd
    }

    /// Starts the process of `slot` and waits until it serves (a node: its URL goes to the clients) or runs.
    async fn launch(self: &Arc<Self>, slot: Slot) -> Result<(), String> {
        let generation = self.generations[slot.index()].fetch_add(1, Ordering::Relaxed);
        let name = format!("{}.{generation}", slot.name());
        let (cmd, dir) = (self.command(slot), self.dir.clone());
        let started = tokio::task::spawn_blocking(move || {
            let running = Running::start(cmd, &dir, &name);
            let url = match slot {
                Slot::Serve(_) => Some(running.serving_url()),
                Slot::Worker => {
                    running.wait_for_line("background workers starting");
                    None
                }
            };
            (running, url)
        })
        .await;
        let (running, url) = started.map_err(|e| format!("{} did not start: {e}", slot.name()))?;
        self.processes.lock().unwrap()[slot.index()] = Some(running);
        if let (Slot::Serve(i), Some(url)) = (slot, url) {
            self.nodes.set(i, Some(url));
        }
        Ok(())
    }

    /// Takes the process of `slot` out of the monitor's sight: what happens to it now is the soak's doing.
    fn take(&self, slot: Slot) -> Option<Running> {
        self.processes.lock().unwrap()[slot.index()].take()
    }

    /// SIGKILLs the process of `slot` and, `down` later, starts a new one in its place.
    pub async fn sigkill_and_restart(
        self: &Arc<Self>,
        slot: Slot,
        down: Duration,
    ) -> Result<(), String> {
        let Some(mut process) = self.take(slot) else {
            return Err(format!("{} was not running", slot.name()));
        };
        tokio::task::spawn_blocking(move || process.kill())
            .await
            .map_err(|e| e.to_string())?;
        tokio::time::sleep(down).await;
        self.launch(slot).await
    }

    /// SIGTERMs the process of `slot`, waits for it to exit (it must, with 0, within its grace period), and
    /// starts a new one. Until the old one has exited its URL stays with the clients: it drains, then refuses
    /// connections, and they retry elsewhere.
    pub async fn sigterm_and_restart(self: &Arc<Self>, slot: Slot) -> Result<(), String> {
        let Some(mut process) = self.take(slot) else {
            return Err(format!("{} was not running", slot.name()));
        };
        let name = slot.name();
        let exited = tokio::task::spawn_blocking(move || {
            process.terminate();
            let deadline = Instant::now() + SHUTDOWN_GRACE + Duration::from_secs(5);
            while process.is_running() {
                if Instant::now() > deadline {
                    process.kill();
                    return Err(format!(
                        "{name} did not exit within its grace period after SIGTERM; see {}",
                        process.log.display()
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            match process.wait_exit() {
                Some(0) => Ok(()),
                code => Err(format!(
                    "{name} exited {code:?} after SIGTERM; see {}",
                    process.log.display()
                )),
            }
        })
        .await
        .map_err(|e| e.to_string())?;
        if let Err(e) = exited {
            self.incident(e);
        }
        self.launch(slot).await
    }

    pub fn primary(&self) -> Member {
        *self.primary.lock().unwrap()
    }

    /// Restarts the primary with a fast shutdown, as an operator's `pg_ctl restart -m fast`.
    pub async fn restart_primary(self: &Arc<Self>) -> Result<(), String> {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.pg.restart(this.primary()))
            .await
            .map_err(|e| e.to_string())?
    }

    /// SIGKILLs the primary, promotes the standby, switches the endpoint to it, then rebuilds the old primary
    /// as the new one's synchronous standby, so a later failover finds a standby again. Returns how long the
    /// endpoint led nowhere (kill to switch).
    pub async fn fail_over(self: &Arc<Self>) -> Result<Duration, String> {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let old = this.primary();
            let new = old.other();
            let killed = Instant::now();
            this.pg.kill(old)?;
            this.pg.promote(new)?;
            this.endpoint.switch_to(this.pg.addr_of(new));
            let outage = killed.elapsed();
            *this.primary.lock().unwrap() = new;
            this.pg.reseed_standby(old, Replication::Synchronous)?;
            Ok(outage)
        })
        .await
        .map_err(|e| e.to_string())?
    }

    pub fn incident(&self, what: String) {
        eprintln!("chaos: {what}");
        self.incidents.lock().unwrap().push(what);
    }

    /// Every 200 ms until the soak ends: a skybook process that exited on its own is recorded and replaced,
    /// and what the processes printed is dropped (it is in their log files; kept in memory it would grow).
    pub async fn watch(self: Arc<Self>, stop: Arc<std::sync::atomic::AtomicBool>) {
        while !stop.load(Ordering::Relaxed) {
            let mut exited = Vec::new();
            {
                let mut processes = self.processes.lock().unwrap();
                for slot in Slot::ALL {
                    let entry = &mut processes[slot.index()];
                    if let Some(process) = entry.as_mut() {
                        if process.is_running() {
                            process.skip_printed();
                        } else {
                            let mut process = entry.take().unwrap();
                            exited.push((slot, process.wait_exit(), process.log.clone()));
                        }
                    }
                }
            }
            {
                let mut sandbox = self.sandbox.lock().unwrap();
                if sandbox.is_running() {
                    sandbox.skip_printed();
                }
            }
            for (slot, code, log) in exited {
                eprintln!(
                    "chaos: {} exited on its own ({code:?}); restarting it",
                    slot.name()
                );
                self.exits.lock().unwrap().push(Exit {
                    process: slot.name(),
                    code,
                    log,
                });
                if let Err(e) = self.launch(slot).await {
                    self.incident(e);
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Exits nobody asked for, the sandbox's included.
    pub fn unexpected_exits(&self) -> Vec<Exit> {
        let mut exits = self.exits.lock().unwrap().clone();
        let mut sandbox = self.sandbox.lock().unwrap();
        if !sandbox.is_running() {
            exits.push(Exit {
                process: "sandbox".into(),
                code: sandbox.wait_exit(),
                log: sandbox.log.clone(),
            });
        }
        exits
    }

    /// Whether every skybook process is in place (no restart under way).
    pub fn all_running(&self) -> bool {
        self.processes.lock().unwrap().iter().all(Option::is_some)
    }
}
