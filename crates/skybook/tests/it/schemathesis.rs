//! The API held to its OpenAPI document by an outside fuzzer: schemathesis (PyPI; `scripts/test-deps` installs
//! it) against a real `serve` on each engine, with every check and every phase — examples, coverage, fuzzing,
//! and the stateful phase, which follows the document's links from a created booking to its read.
//!
//! It must find nothing: no 5xx, no response outside the document, no schema-valid request refused and no
//! schema-violating one accepted. The one allowance (`scripts/schemathesis/known.py`) is for a 422 whose every
//! named field breaks a rule JSON Schema cannot state (a Luhn check, an expiry or a date window relative to today,
//! the same traveller twice, Unicode letter categories) or a key reused with another body; any other answer to a
//! schema-valid request still fails the run.

use std::path::PathBuf;
use std::process::Command;

use skybook_testkit::fixtures::{add_flight, tenant_with_flight};
use skybook_testkit::process::{deployment, migrate, start_sandbox, Running};
use skybook_testkit::{backend_tests, Engine};

const EXE: &str = env!("CARGO_BIN_EXE_skybook");
const ADMIN_TOKEN: &str = "admin-token-of-the-fuzzed-deployment-0001";

async fn the_api_keeps_the_promises_of_its_openapi_document(engine: Engine) {
    let dir = skybook_testkit::test_dir("schemathesis");
    let url = skybook_testkit::fresh_database_url(engine, "schemathesis").await;
    migrate(EXE, &url);
    let store = skybook_testkit::store_at(&url).await;
    // Room for every booking the fuzzer makes, and one seat on another flight so that it meets `sold_out` too.
    let (tenant, _) = tenant_with_flight(&store, "demo", 5000).await;
    add_flight(&store, &tenant, "EI999", 1).await;
    store.close().await;
    let (_sandbox, sandbox) = start_sandbox(EXE, &dir);
    // The admin API is fuzzed too, signed in: every operation with the platform admin's token.
    let mut serve = deployment(EXE, "serve", &url, &sandbox);
    serve
        .args(["--listen", "127.0.0.1:0", "--no-workers"])
        .env("SKYBOOK_ADMIN_TOKEN", ADMIN_TOKEN);
    let node = Running::start(serve, &dir, "serve");
    let base = node.serving_url();

    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/schemathesis/run.sh");
    let output = Command::new("bash")
        .arg(script)
        .arg(&base)
        .args(["--header", &format!("Authorization: Bearer {ADMIN_TOKEN}")])
        .env("ST_OUT", dir.join("schemathesis"))
        .env("ST_KNOWN_FILTER", "1")
        .output()
        .expect("run scripts/schemathesis/run.sh");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::write(dir.join("schemathesis.log"), &report).unwrap();
    assert!(
        output.status.success(),
        "schemathesis found failures (exit {:?}):\n{report}",
        output.status.code()
    );
    // The stateful phase ran and followed the document's link from a created booking to its read.
    let covered = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("API Links:"))
        .and_then(|l| l.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or_else(|| panic!("no stateful summary in the report:\n{report}"));
    assert!(
        covered >= 1,
        "the stateful phase followed no link:\n{report}"
    );
    let summary: Vec<&str> = report
        .lines()
        .filter(|l| l.contains("generated") || l.contains("API Links") || l.contains("Filtered"))
        .map(str::trim)
        .collect();
    eprintln!("schemathesis on {engine:?}: {}", summary.join(" | "));
}

backend_tests!(the_api_keeps_the_promises_of_its_openapi_document);
