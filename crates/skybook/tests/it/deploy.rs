//! What a platform team deploys — the `Dockerfile` and the kustomize manifests under `deploy/` — checked against
//! the binary they run. No container engine or cluster runs here: the manifests are rendered with `kubectl
//! kustomize`, as an operator applies them, and every variable, argument, probe and port in them is checked
//! against what `skybook` reads and serves; the image's runtime base is checked against what the binary links.

mod containers;
mod image;
mod manifests;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs a tool to completion, `input` on its stdin, and returns its stdout; a tool that is missing or fails
/// stops the test saying which and why.
fn run_tool(mut cmd: Command, input: Option<Vec<u8>>, what: &str) -> Vec<u8> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let stdin = if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let mut child = match cmd.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{program}` is not installed, and the test needs it for {what} (CI machines have kubectl, and \
             binutils for readelf)"
        ),
        Err(e) => panic!("cannot run `{program}` for {what}: {e}"),
    };
    // Written from a thread: the tool may start printing before it has read all its input.
    let writer = input.map(|input| {
        let mut pipe = child.stdin.take().unwrap();
        std::thread::spawn(move || pipe.write_all(&input))
    });
    let output = child.wait_with_output().unwrap();
    if let Some(writer) = writer {
        writer.join().unwrap().unwrap();
    }
    assert!(
        output.status.success(),
        "{what} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The Dockerfile's instructions, continuation lines joined and comments dropped: (INSTRUCTION, the rest).
fn dockerfile() -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(repo().join("Dockerfile")).expect("a Dockerfile at the root");
    let joined = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\\n", " ");
    joined
        .lines()
        .filter_map(|line| {
            let (instruction, rest) = line.trim().split_once(char::is_whitespace)?;
            Some((instruction.to_uppercase(), rest.trim().to_owned()))
        })
        .collect()
}

/// The user the image runs as (the Dockerfile's `USER uid:gid`).
fn image_user() -> u64 {
    let user = dockerfile()
        .into_iter()
        .rev()
        .find_map(|(instruction, rest)| (instruction == "USER").then_some(rest))
        .expect("the Dockerfile names its USER");
    user.split(':')
        .next()
        .unwrap()
        .parse()
        .expect("USER is numeric, so Kubernetes can check runAsNonRoot")
}
