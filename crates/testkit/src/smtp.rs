//! A real SMTP server for the email tests: Python's aiosmtpd (Debian's `python3-aiosmtpd`, installed by
//! `scripts/test-deps`), storing every accepted message in a Maildir we can read back. Like a real server it
//! refuses some recipients: any whose local part starts with `reject` for good (`550 5.1.1`, quoting the
//! address as Postfix does), any starting with `defer` for now (`451 4.7.1`, as greylisting does).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The interpreter with aiosmtpd: `SKYBOOK_TEST_PYTHON`, else Debian's.
fn python() -> String {
    std::env::var("SKYBOOK_TEST_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into())
}

/// aiosmtpd's command line with its Maildir handler, taught to refuse [`REFUSED_PREFIX`] and [`DEFERRED_PREFIX`]
/// recipients. `python3 -c` runs this as `__main__`, which is where `-c __main__.RefusingMailbox` finds it.
const SERVER: &str = r#"
import sys
from aiosmtpd.handlers import Mailbox
from aiosmtpd.main import main

class RefusingMailbox(Mailbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@")[0].lower().startswith("reject"):
            return "550 5.1.1 <%s>: Recipient address rejected: mailbox unavailable" % address
        if address.split("@")[0].lower().startswith("defer"):
            return "451 4.7.1 <%s>: Recipient address rejected: greylisted, try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

main(sys.argv[1:])
"#;

/// How the local part of a recipient the server refuses for good begins, e.g. `reject.ann@example.com`.
pub const REFUSED_PREFIX: &str = "reject";
/// How the local part of a recipient the server refuses for now begins, e.g. `defer.ann@example.com`.
pub const DEFERRED_PREFIX: &str = "defer";

/// An aiosmtpd process on a loopback port; killed when dropped.
pub struct SmtpSink {
    child: Option<Child>,
    pub port: u16,
    pub maildir: PathBuf,
    log: PathBuf,
}

impl SmtpSink {
    /// Starts a server on a free port, storing mail under `<dir>/maildir`, and waits until it accepts
    /// connections.
    pub fn start(dir: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("find a free port")
            .port();
        Self::start_on(dir, port)
    }

    /// Starts a server on `port` (to bring one back where a client expects it).
    pub fn start_on(dir: &Path, port: u16) -> Self {
        let maildir = dir.join("maildir");
        let log = dir.join(format!("smtp-{port}.log"));
        let out = std::fs::File::create(&log).expect("smtp log");
        let child = Command::new(python())
            .args(["-c", SERVER, "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "__main__.RefusingMailbox"])
            .arg(&maildir)
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("start aiosmtpd (scripts/test-deps installs python3-aiosmtpd)");
        let mut sink = Self {
            child: Some(child),
            port,
            maildir,
            log,
        };
        sink.wait_until_listening();
        sink
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "aiosmtpd exited ({status}): {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not start listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message the server accepted, in no particular order.
    pub fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect()
    }

    /// Waits (up to `timeout`) until at least `n` messages arrived; returns them all.
    pub fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n || Instant::now() >= deadline {
                return messages;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Stops the server (the port refuses connections afterwards).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The decoded text of a MIME message's parts, good enough for assertions: quoted-printable soft line breaks
/// and `=XX` escapes undone.
pub fn decode_quoted_printable(raw: &str) -> String {
    let joined = raw.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
