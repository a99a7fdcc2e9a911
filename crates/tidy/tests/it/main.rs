//! The tidy tests: each guards one invariant ARCHITECTURE.md states, and names what broke it.

use std::collections::BTreeSet;
use std::path::Path;

use skybook_tidy::{code_lines, crate_dirs, dependencies, files, names, relative, root};

/// Only the storage crate writes SQL. `sqlx` appears elsewhere only where the tree has reason: the sandbox's
/// private store (it is another system), test support, the chaos soak's evidence (it audits the database from
/// outside), and the domain's `Type`/`Encode`/`Decode` impls for its newtypes (so invalid values cannot be read
/// back from a database).
#[test]
fn sqlx_only_where_allowed() {
    const ALLOWED_CRATES: [&str; 5] = ["storage", "testkit", "sandbox", "domain", "chaos"];
    const ALLOWED_FILES: [&str; 4] = [
        "crates/sandbox/src/store.rs",
        "crates/chaos/src/evidence.rs",
        "crates/domain/src/sqlx_string.rs",
        "crates/domain/src/ids.rs",
    ];
    let mut offences = Vec::new();
    for dir in crate_dirs() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        if !ALLOWED_CRATES.contains(&name.as_str())
            && dependencies(&manifest).iter().any(|d| d == "sqlx")
        {
            offences.push(format!("crates/{name}/Cargo.toml depends on sqlx"));
        }
        // The tidy tests name what they look for.
        if ["storage", "testkit", "tidy"].contains(&name.as_str()) {
            continue;
        }
        for file in files(&dir, ".rs") {
            let path = relative(&file);
            if ALLOWED_FILES.contains(&path.as_str()) {
                continue;
            }
            let source = std::fs::read_to_string(&file).unwrap();
            for (line, text) in code_lines(&source) {
                if names(text, "sqlx") {
                    offences.push(format!("{path}:{line}: {}", text.trim()));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "SQL belongs to skybook-storage (see ARCHITECTURE.md):\n{}",
        offences.join("\n")
    );
}

/// `anyhow` only at the edges: the binary (CLI), the background loops and their workers, the sandbox (a
/// program of its own), test support and the chaos soak. Libraries return typed errors the caller can match on.
#[test]
fn anyhow_only_at_the_edges() {
    const EDGES: [&str; 7] = [
        "skybook", "worker", "notify", "sandbox", "testkit", "tidy", "chaos",
    ];
    let mut offences = Vec::new();
    for dir in crate_dirs() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if EDGES.contains(&name.as_str()) {
            continue;
        }
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        if dependencies(&manifest).iter().any(|d| d == "anyhow") {
            offences.push(format!("crates/{name}/Cargo.toml depends on anyhow"));
        }
        for file in files(&dir.join("src"), ".rs") {
            let source = std::fs::read_to_string(&file).unwrap();
            for (line, text) in code_lines(&source) {
                if names(text, "anyhow") {
                    offences.push(format!("{}:{line}: {}", relative(&file), text.trim()));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "anyhow is for the edges ({EDGES:?}); use a thiserror enum:\n{}",
        offences.join("\n")
    );
}

/// A source file over 600 lines holds more than one thing: split it by what its parts hold.
#[test]
fn source_files_are_short() {
    const MAX_LINES: usize = 600;
    let long: Vec<String> = files(&root().join("crates"), ".rs")
        .into_iter()
        .filter_map(|file| {
            let n = std::fs::read_to_string(&file).unwrap().lines().count();
            (n > MAX_LINES).then(|| format!("{} has {n} lines", relative(&file)))
        })
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
}

/// Every crate inherits `[workspace.lints]`, so one table in the root Cargo.toml is the lint policy.
#[test]
fn crates_inherit_workspace_lints() {
    let missing: Vec<String> = crate_dirs()
        .into_iter()
        .filter(|dir| {
            let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
            !manifest.contains("[lints]\nworkspace = true")
        })
        .map(|dir| relative(&dir.join("Cargo.toml")))
        .collect();
    assert!(
        missing.is_empty(),
        "add `[lints]\\nworkspace = true` to:\n{}",
        missing.join("\n")
    );
}

/// The toolchain that builds and tests the workspace is the `rust-version` it declares, so every CI run checks
/// the declared MSRV (and a newer toolchain prompts raising it, instead of leaving a claim nothing checks).
#[test]
fn toolchain_is_the_declared_msrv() {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let declared = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("rust-version = "))
        .expect("the workspace declares rust-version")
        .trim_matches('"')
        .to_owned();
    // "rustc 1.95.0 (59807616e 2026-04-14)", as the build script saw the compiler that built this test.
    let version = env!("TIDY_RUSTC_VERSION");
    let running = version
        .split_whitespace()
        .nth(1)
        .expect("rustc X.Y.Z")
        .to_owned();
    let major_minor: Vec<&str> = running.split('.').take(2).collect();
    assert_eq!(
        major_minor.join("."),
        declared,
        "the toolchain is {running} but the workspace declares rust-version {declared}: raise rust-version \
         (and fix what the new toolchain's clippy says), or use the declared toolchain"
    );
}

/// A `backend_tests!` contract test is an `async fn NAME(engine: Engine)` that the macro turns into one test per
/// engine; one that is defined but not listed in the macro never runs (the compiler only warns).
#[test]
fn backend_tests_are_registered() {
    let mut missing = Vec::new();
    // The tidy tests' own sources hold the pattern they look for, as text.
    for dir in crate_dirs().into_iter().filter(|d| !d.ends_with("tidy")) {
        let sources: Vec<(String, String)> = files(&dir.join("tests"), ".rs")
            .into_iter()
            .map(|f| (relative(&f), std::fs::read_to_string(&f).unwrap()))
            .collect();
        let registered: BTreeSet<String> =
            sources.iter().flat_map(|(_, s)| registered_in(s)).collect();
        for (path, source) in &sources {
            for name in contract_tests_in(source) {
                if !registered.contains(&name) {
                    missing.push(format!("{path}: {name}"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "contract tests not in any backend_tests!(...):\n{}",
        missing.join("\n")
    );
}

/// The names listed in every `backend_tests!(...)` of `source`.
fn registered_in(source: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (at, _) in source.match_indices("backend_tests!(") {
        let rest = &source[at + "backend_tests!(".len()..];
        let list = &rest[..rest.find(')').unwrap_or(rest.len())];
        names.extend(
            list.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
        );
    }
    names
}

/// The `async fn NAME(engine: Engine)` without a return type in `source`.
fn contract_tests_in(source: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (at, _) in source.match_indices("async fn ") {
        let rest = &source[at + "async fn ".len()..];
        let Some(open) = rest.find('(') else { continue };
        let Some(close) = rest[open..].find(')').map(|c| open + c) else {
            continue;
        };
        let name = rest[..open].trim();
        let params = rest[open + 1..close].trim().trim_end_matches(',').trim();
        let returns_unit = rest[close + 1..].trim_start().starts_with('{');
        let takes_engine = matches!(
            params.split_once(':').map(|(p, t)| (p.trim(), t.trim())),
            Some(("engine" | "_engine", "Engine"))
        );
        if takes_engine && returns_unit && !name.contains('<') {
            names.push(name.to_owned());
        }
    }
    names
}

/// Every repository path the docs name exists: a `path` in backticks that starts in one of the repository's
/// folders (or is one of its top-level files), and every relative Markdown link.
#[test]
fn documented_paths_exist() {
    let root = root();
    let mut docs = vec![
        root.join("README.md"),
        root.join("ARCHITECTURE.md"),
        root.join("bench/README.md"),
    ];
    docs.extend(files(&root.join("docs"), ".md"));
    let mut broken = Vec::new();
    for doc in &docs {
        let text = std::fs::read_to_string(doc).unwrap();
        for (line_no, line) in text.lines().enumerate() {
            for path in backticked_paths(line) {
                if !root.join(&path).exists() {
                    broken.push(format!("{}:{}: `{path}`", relative(doc), line_no + 1));
                }
            }
            for target in link_targets(line) {
                let base = doc.parent().unwrap_or(Path::new("."));
                if !base.join(&target).exists() {
                    broken.push(format!("{}:{}: ({target})", relative(doc), line_no + 1));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "paths named in the docs that do not exist:\n{}",
        broken.join("\n")
    );
}

/// Backticked spans of `line` that name a repository path.
fn backticked_paths(line: &str) -> Vec<String> {
    const FOLDERS: [&str; 6] = ["crates/", "scripts/", "docs/", "bench/", "deploy/", ".ci/"];
    const FILES: [&str; 5] = [
        "README.md",
        "ARCHITECTURE.md",
        "Cargo.toml",
        "deny.toml",
        "Dockerfile",
    ];
    line.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|span| {
            // `scripts/test -p web`, `crates/x/src/y.rs::item`, `path:12`: the path is the first word, up to
            // an item or line suffix.
            let word = span.split_whitespace().next()?;
            let path = word.split("::").next()?;
            let path = path.split(':').next()?.trim_end_matches(['.', ',', ')']);
            let is_path = FOLDERS.iter().any(|f| path.starts_with(f)) || FILES.contains(&path);
            let pattern = path.contains(['*', '<', '{', '$', '…']) || path.contains("...");
            (is_path && !pattern).then(|| path.to_owned())
        })
        .collect()
}

/// Relative link targets of `line` (`[text](target)`), without their `#anchor`.
fn link_targets(line: &str) -> Vec<String> {
    line.match_indices("](")
        .filter_map(|(at, _)| {
            let rest = &line[at + 2..];
            let target = &rest[..rest.find(')')?];
            let target = target.split('#').next()?.trim();
            let external =
                target.is_empty() || target.contains("://") || target.starts_with("mailto:");
            (!external).then(|| target.to_owned())
        })
        .collect()
}

/// Every guard ARCHITECTURE.md names for an invariant — `(test: a, b)`, `(tidy test: c)` — is a test function
/// that exists, so an invariant cannot keep citing a guard that was renamed or deleted.
#[test]
fn named_guards_exist() {
    let map = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    // Joined into one line: a guard list may wrap.
    let map = map.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut guards = BTreeSet::new();
    for marker in ["(test: ", "(tidy test: ", "; test: ", "; tidy test: "] {
        for (at, _) in map.match_indices(marker) {
            let rest = &map[at + marker.len()..];
            let list = &rest[..rest.find([')', ';']).unwrap_or(rest.len())];
            for name in list.split(',').map(str::trim) {
                if !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                {
                    guards.insert(name.to_owned());
                }
            }
        }
    }
    assert!(guards.len() >= 10, "the guards were not found: {guards:?}");
    let sources: Vec<String> = files(&root().join("crates"), ".rs")
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let missing: Vec<&String> = guards
        .iter()
        .filter(|name| {
            let definition = format!("fn {name}(");
            !sources.iter().any(|s| s.contains(&definition))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names guards that are not test functions: {missing:?}"
    );
}
