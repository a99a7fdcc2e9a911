//! The image: the Dockerfile's paths, stages and entrypoint, and its runtime base against what the binary links.

use std::collections::BTreeSet;
use std::process::Command;

use super::{dockerfile, image_user, repo, run_tool};

/// The image's runtime stage (Debian 12, distroless, with glibc and libgcc_s).
const RUNTIME_BASE: &str = "gcr.io/distroless/cc-debian12:nonroot";
/// Debian 12's glibc: the newest symbol version the binary may ask of the runtime base.
const RUNTIME_GLIBC: (u32, u32) = (2, 36);
/// What the runtime base ships that the binary may link: glibc (libc6), libgcc_s (libgcc-s1), libstdc++ and
/// libgomp. The base also ships OpenSSL (libssl3), deliberately not listed: skybook's TLS is rustls, and a
/// libssl dependency creeping in would be a policy change, not a detail.
const SHIPPED_LIBRARIES: [&str; 12] = [
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libresolv.so.2",
    "libutil.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
    "libgcc_s.so.1",
    "libstdc++.so.6",
    "libgomp.so.1",
];

#[test]
fn the_dockerfile_names_paths_that_exist() {
    let instructions = dockerfile();
    let root = repo();
    let ignored: Vec<String> = std::fs::read_to_string(root.join(".dockerignore"))
        .expect("a .dockerignore beside the Dockerfile")
        .lines()
        .map(|l| l.trim().trim_end_matches('/').to_owned())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(
        ignored.iter().any(|l| l == "target"),
        "the .dockerignore keeps target/ out of the build context"
    );

    let stages: Vec<usize> = (0..instructions.len())
        .filter(|&i| instructions[i].0 == "FROM")
        .collect();
    assert!(stages.len() >= 2, "a multistage build");
    let builder_image = &instructions[stages[0]].1;
    let rust_version = std::fs::read_to_string(root.join("Cargo.toml"))
        .unwrap()
        .lines()
        .find_map(|l| {
            Some(
                l.trim()
                    .strip_prefix("rust-version = ")?
                    .trim_matches('"')
                    .to_owned(),
            )
        })
        .unwrap();
    assert!(
        builder_image.starts_with(&format!("rust:{rust_version}-bookworm ")),
        "the build stage is the official rust image of the workspace's rust-version {rust_version} on Debian 12 \
         (the runtime's glibc), not {builder_image:?}"
    );

    for (instruction, rest) in &instructions {
        if instruction != "COPY" || rest.contains("--from=") {
            continue;
        }
        let words: Vec<&str> = rest
            .split_whitespace()
            .filter(|w| !w.starts_with("--"))
            .collect();
        for source in &words[..words.len() - 1] {
            let source = source.trim_start_matches("./").trim_end_matches('/');
            assert!(
                root.join(source).exists(),
                "COPY {source}: no such path in the repository"
            );
            assert!(
                !ignored.iter().any(|i| i == source),
                "COPY {source}, which .dockerignore leaves out"
            );
        }
    }
    let builds = instructions
        .iter()
        .any(|(i, rest)| i == "RUN" && rest.contains("cargo build --release --locked -p skybook"));
    assert!(
        builds,
        "the builder runs `cargo build --release --locked -p skybook`"
    );

    let runtime = &instructions[*stages.last().unwrap()..];
    assert!(
        runtime[0].1.starts_with(RUNTIME_BASE),
        "the runtime stage is {RUNTIME_BASE}, not {:?}",
        runtime[0].1
    );
    // distroless has no shell: a RUN there would fail the build.
    assert!(
        runtime.iter().all(|(i, _)| i != "RUN"),
        "no RUN in the runtime stage: it has no shell"
    );
    let entrypoint = runtime
        .iter()
        .find(|(i, _)| i == "ENTRYPOINT")
        .map(|(_, rest)| rest.as_str());
    let entrypoint: Vec<String> =
        serde_json::from_str(entrypoint.expect("an ENTRYPOINT")).expect("exec form");
    assert_eq!(
        entrypoint,
        ["/skybook"],
        "the entrypoint is the binary itself"
    );
    let copied = runtime
        .iter()
        .any(|(i, rest)| i == "COPY" && rest.contains("--from=") && rest.ends_with(" /skybook"));
    assert!(copied, "the runtime stage copies the binary to /skybook");
    assert_ne!(image_user(), 0, "the image runs as a user other than root");
}

/// readelf's answer about the test's own `skybook`: built by the same toolchain and profile settings as the
/// release binary, and linking the same libraries (LTO and stripping change neither).
fn readelf(flag: &str) -> String {
    let mut cmd = Command::new("readelf");
    cmd.args([flag, "--wide", env!("CARGO_BIN_EXE_skybook")]);
    String::from_utf8(run_tool(cmd, None, &format!("`readelf {flag}`"))).unwrap()
}

#[test]
fn the_binary_needs_only_what_the_runtime_base_ships() {
    let needed: BTreeSet<String> = readelf("--dynamic")
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(l[l.find('[')? + 1..l.rfind(']')?].to_owned()))
        .collect();
    assert!(
        needed.contains("libc.so.6"),
        "readelf found the binary's libraries: {needed:?}"
    );
    let missing: Vec<&String> = needed
        .iter()
        .filter(|lib| !SHIPPED_LIBRARIES.contains(&lib.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "the binary links {missing:?}, which {RUNTIME_BASE} does not ship (or, for OpenSSL, which skybook \
         promises not to use): change the dependency, or the base (Dockerfile) and this list together"
    );

    let headers = readelf("--program-headers");
    let interpreter = headers
        .split("program interpreter: ")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .expect("a dynamically linked binary names its interpreter");
    let file = interpreter.rsplit('/').next().unwrap();
    assert!(
        SHIPPED_LIBRARIES.contains(&file),
        "the interpreter {interpreter} is not in the base"
    );

    let newest = readelf("--version-info")
        .split_whitespace()
        .filter_map(|word| {
            let (major, minor) = word.strip_prefix("GLIBC_")?.split_once('.')?;
            let minor = minor.split('.').next()?;
            Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?))
        })
        .max()
        .expect("the binary asks for versioned glibc symbols");
    assert!(
        newest <= RUNTIME_GLIBC,
        "the binary needs glibc {newest:?}, newer than Debian 12's {RUNTIME_GLIBC:?}: the image builds on \
         bookworm (Dockerfile), so this build machine's glibc is newer than the image's"
    );
}
