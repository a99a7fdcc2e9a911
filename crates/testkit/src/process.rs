//! Running `skybook` subcommands as child processes (tests and benchmarks), output kept under the data root.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A command for the `skybook` binary at `exe` (a test or bench passes `env!("CARGO_BIN_EXE_skybook")`), with
/// no inherited `SKYBOOK_*` settings and JSON logs.
pub fn skybook(exe: &str) -> Command {
    let mut cmd = Command::new(exe);
    // Start from a clean slate: only what a test sets reaches the child.
    for (name, _) in std::env::vars() {
        if name.starts_with("SKYBOOK_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("RUST_LOG", "info")
        .env("SKYBOOK_LOG_FORMAT", "json");
    cmd
}

/// A child process killed when dropped; its output is copied to `<dir>/<name>.log`.
pub struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    pub log: PathBuf,
}

impl Running {
    pub fn start(mut cmd: Command, dir: &std::path::Path, name: &str) -> Self {
        let log = dir.join(format!("{name}.log"));
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn skybook");
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let (tx, log) = (tx.clone(), log.clone());
            std::thread::spawn(move || {
                use std::io::Write;
                let mut file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .unwrap();
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = writeln!(file, "{line}");
                    let _ = tx.send(line);
                }
            });
        }
        Self { child, lines, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (the orchestrator's polite stop).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// `true` while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("poll child").is_none()
    }

    /// Sends SIGKILL: the process stops between any two instructions, with no chance to clean up.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// Waits (bounded, 30 s) for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("wait for child") {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "process did not exit within 30 s; see {}",
            self.log.display()
        )
    }

    /// Waits (bounded) for an output line containing `needle`; returns it.
    pub fn wait_for_line(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => continue,
                Err(_) => break,
            }
        }
        panic!(
            "no output line containing {needle:?}; see {}",
            self.log.display()
        )
    }

    /// Forgets the output printed so far: the next [`Running::wait_for_line`] sees only lines printed after this.
    pub fn skip_printed(&self) {
        while self.lines.try_recv().is_ok() {}
    }

    /// The URL at the end of the first output line containing `needle` (`... listening on http://...`,
    /// `  site:  http://.../`), without a trailing slash.
    pub fn url_after(&self, needle: &str) -> String {
        let line = self.wait_for_line(needle);
        line.split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .trim_end_matches('/')
            .to_owned()
    }

    /// The address a `serve` process logged it is listening on.
    pub fn serving_url(&self) -> String {
        let line = self.wait_for_line("skybook serving");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        format!("http://{}", value["addr"].as_str().unwrap())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command to completion (bounded); returns exit code and stderr.
pub fn run_to_end(mut cmd: Command) -> (i32, String) {
    let output = cmd.stdin(Stdio::null()).output().expect("run skybook");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `skybook migrate` on `database_url`; panics with its stderr if it fails.
pub fn migrate(exe: &str, database_url: &str) {
    let mut cmd = skybook(exe);
    cmd.arg("migrate").env("SKYBOOK_DATABASE_URL", database_url);
    let (code, stderr) = run_to_end(cmd);
    assert_eq!(code, 0, "skybook migrate failed: {stderr}");
}

/// `skybook sandbox` on a free port with its state in `<dir>/sandbox`; returns the process and its URL.
pub fn start_sandbox(exe: &str, dir: &std::path::Path) -> (Running, String) {
    let mut cmd = skybook(exe);
    cmd.args(["sandbox", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("sandbox"));
    let sandbox = Running::start(cmd, dir, "sandbox");
    let url = sandbox.url_after("sandbox listening on");
    (sandbox, url)
}

/// `skybook serve --no-workers` on a free port, fetching its own tokens from the sandbox at `sandbox_url`;
/// returns the process and its base URL. Nodes started with the same `database_url` form one deployment.
pub fn start_serve(
    exe: &str,
    dir: &std::path::Path,
    name: &str,
    database_url: &str,
    sandbox_url: &str,
) -> (Running, String) {
    let mut cmd = deployment(exe, "serve", database_url, sandbox_url);
    cmd.args(["--listen", "127.0.0.1:0", "--no-workers"]);
    let node = Running::start(cmd, dir, name);
    let url = node.serving_url();
    (node, url)
}

/// The secret key of the deployments tests start as processes.
pub const DEPLOYMENT_SECRET: &str = "shared-secret-of-this-deployment-0123456789";
/// What a deployment's scraper presents for `/metrics` (`SKYBOOK_METRICS_TOKEN`).
pub const METRICS_TOKEN: &str = "metrics-token-of-this-deployment";

/// `skybook <command>` (`serve` or `worker`) as a node of one deployment: its database, the shared secret, and
/// the sandbox at `sandbox_url` as payment provider (fetching its own tokens). Add flags and start it.
pub fn deployment(exe: &str, command: &str, database_url: &str, sandbox_url: &str) -> Command {
    let mut cmd = skybook(exe);
    cmd.arg(command)
        .env("SKYBOOK_DATABASE_URL", database_url)
        .env("SKYBOOK_SECRET_KEY", DEPLOYMENT_SECRET)
        .env("SKYBOOK_PAYMENTS_URL", sandbox_url)
        .env(
            "SKYBOOK_PAYMENTS_TOKEN_URL",
            format!("{sandbox_url}/oauth/token"),
        )
        .env("SKYBOOK_PAYMENTS_CLIENT_ID", "skybook")
        .env("SKYBOOK_PAYMENTS_CLIENT_SECRET", "sandbox-secret")
        .env("SKYBOOK_METRICS_TOKEN", METRICS_TOKEN)
        // The tests read back every booking they made, from one address: more than a client may look up.
        .env("SKYBOOK_LOOKUPS_PER_MINUTE", "100000");
    cmd
}

/// Points `cmd` at the sandbox's partner feeds, with skybook's own OAuth2 client.
pub fn feeds_from(cmd: &mut Command, sandbox_url: &str) {
    cmd.env("SKYBOOK_FEEDS_URL", sandbox_url)
        .env(
            "SKYBOOK_FEEDS_TOKEN_URL",
            format!("{sandbox_url}/oauth/token"),
        )
        .env("SKYBOOK_FEEDS_CLIENT_ID", "skybook")
        .env("SKYBOOK_FEEDS_CLIENT_SECRET", "sandbox-secret");
}

/// The sandbox's `/sandbox/stats` (what it has issued, charged, refunded...).
pub async fn sandbox_stats(sandbox_url: &str) -> serde_json::Value {
    reqwest::get(format!("{sandbox_url}/sandbox/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Successful charges the sandbox at `sandbox_url` has made.
pub async fn sandbox_charges(sandbox_url: &str) -> i64 {
    sandbox_stats(sandbox_url).await["charges"]
        .as_i64()
        .unwrap()
}

/// Sets the sandbox's injected faults (`POST /sandbox/faults`); panics if it refuses them.
pub async fn sandbox_faults(sandbox_url: &str, faults: serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("{sandbox_url}/sandbox/faults"))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{response:?}");
}

/// POSTs a booking to `base` for `tenant`; returns status and JSON body.
pub async fn post_booking(
    client: &reqwest::Client,
    base: &str,
    tenant: &str,
    key: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let response = client
        .post(format!("{base}/api/v1/tenants/{tenant}/bookings"))
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .expect("booking request");
    (
        response.status().as_u16(),
        response.json().await.expect("a JSON body"),
    )
}

/// Waits (bounded, 60 s) until booking `reference` at `base` is settled — `confirmed` or `failed` — and returns
/// that status. Panics if the API does not know the booking (an acknowledged booking was lost). `email` is the
/// booking's contact email, the proof a read needs.
pub async fn settled_status(
    client: &reqwest::Client,
    base: &str,
    tenant: &str,
    reference: &str,
    email: &str,
) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let response = client
            .get(format!(
                "{base}/api/v1/tenants/{tenant}/bookings/{reference}"
            ))
            .query(&[("email", email)])
            .send()
            .await
            .expect("GET booking");
        assert_eq!(response.status(), 200, "booking {reference} not found");
        let booking: serde_json::Value = response.json().await.expect("a JSON body");
        let status = booking["booking"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if status == "confirmed" || status == "failed" {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{reference} still {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
