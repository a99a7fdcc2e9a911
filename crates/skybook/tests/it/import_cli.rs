//! `skybook tenant` and `skybook import` as an operator uses them: a second partner created, a file imported
//! with its summary and exit status, the runs listed, the rejected rows printed as CSV ready to re-send.

use std::process::Command;

use skybook_testkit::{backend_tests, Engine};

use crate::process::skybook;

fn at(url: &str, args: &[&str]) -> Command {
    let mut cmd = skybook();
    cmd.args(args).env("SKYBOOK_DATABASE_URL", url);
    cmd
}

/// `skybook import run --tenant partner-two --feed flights` with `source` (`--file PATH`, `--date D`, ...).
fn import_flights(url: &str, source: &[&str]) -> Command {
    let mut cmd = at(
        url,
        &[
            "import",
            "run",
            "--tenant",
            "partner-two",
            "--feed",
            "flights",
        ],
    );
    cmd.args(source);
    cmd
}

/// Runs to the end; returns (exit code, stdout, stderr).
fn output(mut cmd: Command) -> (i32, String, String) {
    let out = cmd.output().expect("run skybook");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn an_operator_adds_a_partner_and_imports_its_file(engine: Engine) {
    let url = skybook_testkit::fresh_database_url(engine, "import_cli").await;
    let dir = skybook_testkit::test_dir("import_cli");
    crate::process::migrate(&url);

    let (code, out, err) = output(at(
        &url,
        &[
            "tenant",
            "create",
            "--slug",
            "partner-two",
            "--name",
            "Partner Two",
        ],
    ));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("created tenant partner-two"), "{out}");
    let (code, _, err) = output(at(
        &url,
        &[
            "tenant",
            "create",
            "--slug",
            "partner-two",
            "--name",
            "Again",
        ],
    ));
    assert_ne!(code, 0);
    assert!(err.contains("exists already"), "{err}");
    let (code, out, err) = output(at(
        &url,
        &["tenant", "feeds", "partner-two", "--subscribe", "airports"],
    ));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("partner-two feeds: airports"), "{out}");
    let (code, _, err) = output(at(
        &url,
        &["tenant", "feeds", "partner-two", "--subscribe", "nonsense"],
    ));
    assert_ne!(code, 0);
    assert!(err.contains("no feed type \"nonsense\""), "{err}");

    // 200 flights and one bad row (an unknown currency): imported, the bad row rejected.
    let mut csv = String::from("flight number,from,to,departs_at,seats,fare,currency\n");
    for i in 0..200 {
        csv.push_str(&format!(
            "PT{},DUB,LHR,2027-03-{:02}T08:00:00Z,150,5999,EUR\n",
            100 + i,
            1 + i % 28
        ));
    }
    csv.push_str("PT999,DUB,LHR,2027-03-01T08:00:00Z,150,5999,XYZ\n");
    let file = dir.join("flights.csv");
    std::fs::write(&file, &csv).unwrap();
    let file = file.to_str().unwrap();
    let import = |extra: &[&str]| {
        let mut args = vec![
            "import",
            "run",
            "--tenant",
            "partner-two",
            "--feed",
            "flights",
            "--file",
            file,
        ];
        args.extend_from_slice(extra);
        output(at(&url, &args))
    };
    let (code, out, err) = import(&[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(": succeeded — 201 read, 200 inserted, 0 updated, 0 deleted, 1 rejected"),
        "{out}"
    );
    assert!(
        out.contains("line 202, currency \"XYZ\": is not one of EUR, GBP, USD, CHF"),
        "{out}"
    );
    let run = out
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(':')
        .to_owned();

    let (code, out, _) = import(&[]);
    assert_eq!(code, 0);
    assert!(out.contains(": skipped"), "the same content again: {out}");
    let (code, out, _) = import(&["--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("dry run: succeeded"), "{out}");

    let (code, out, _) = output(at(&url, &["import", "runs", "--tenant", "partner-two"]));
    assert_eq!(code, 0);
    assert_eq!(
        out.lines().count(),
        2,
        "two recorded runs (a dry run records nothing): {out}"
    );
    assert!(
        out.contains(&run) && out.contains("succeeded") && out.contains("skipped"),
        "{out}"
    );

    let (code, out, err) = output(at(&url, &["import", "rejects", &run]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "flight number,from,to,departs_at,seats,fare,currency\nPT999,DUB,LHR,2027-03-01T08:00:00Z,150,5999,XYZ\n",
        "the header and the row as they were in the file"
    );

    // A file that cannot be imported: exit status 1, with the reason.
    std::fs::write(dir.join("broken.csv"), "number;origin\n").unwrap();
    let broken = dir.join("broken.csv");
    let (code, out, _) = output(import_flights(&url, &["--file", broken.to_str().unwrap()]));
    assert_eq!(code, 1);
    assert!(
        out.contains("failed") && out.contains("lacks required column"),
        "{out}"
    );

    // One day's feed from the partner's endpoint (the sandbox, over HTTP, with skybook's own OAuth2 token):
    // the base64 envelope of a zip, imported; the same day again is skipped.
    let (_sandbox, sandbox) =
        skybook_testkit::process::start_sandbox(env!("CARGO_BIN_EXE_skybook"), &dir);
    let by_date = || {
        let mut cmd = import_flights(&url, &["--date", "2027-04-01"]);
        skybook_testkit::process::feeds_from(&mut cmd, &sandbox);
        output(cmd)
    };
    let (code, out, err) = by_date();
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(": succeeded") && out.contains(" 0 rejected"),
        "{out}"
    );
    let (code, out, _) = by_date();
    assert_eq!(code, 0);
    assert!(out.contains(": skipped"), "{out}");
    let (code, _, err) = output(import_flights(&url, &["--date", "2027-04-01"]));
    assert_ne!(code, 0);
    assert!(err.contains("SKYBOOK_FEEDS_URL"), "{err}");

    let (code, out, _) = output(at(&url, &["import", "feeds"]));
    assert_eq!(code, 0);
    assert!(
        out.contains(
            "flights (built-in flights.toml; key number, departs_at; Upsert; schedule 0 0 2 * * *)"
        ),
        "{out}"
    );
}

/// `skybook admin token create --tenant T --read-only` prints the token once, alone on stdout; only its hash is
/// stored; `list` shows it without the token; `revoke` ends it, and a second revoke says there is nothing to end.
async fn an_operator_token_is_printed_once_listed_and_revoked(engine: Engine) {
    let url = skybook_testkit::fresh_database_url(engine, "admin_token_cli").await;
    crate::process::migrate(&url);
    let (code, _, err) = output(at(
        &url,
        &["tenant", "create", "--slug", "ops", "--name", "Ops"],
    ));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = output(at(
        &url,
        &["admin", "token", "create", "--tenant", "nobody"],
    ));
    assert_ne!(code, 0);
    assert!(err.contains("no tenant nobody"), "{err}");

    let (code, out, err) = output(at(
        &url,
        &["admin", "token", "create", "--tenant", "ops", "--read-only"],
    ));
    assert_eq!(code, 0, "{err}");
    // The token on a line of its own (a log line may come before it).
    let token = out
        .lines()
        .find(|l| l.starts_with("sbop_"))
        .unwrap_or_default();
    assert_eq!(token.len(), 69, "the token alone on its line: {out}");
    assert!(err.contains("read-only operator token"), "{err}");
    let id = err
        .lines()
        .find(|l| l.starts_with("created"))
        .and_then(|l| l.split_whitespace().nth(4))
        .unwrap_or_else(|| panic!("the token's id in {err}"))
        .to_owned();

    let store = skybook_testkit::store_at(&url).await;
    let hash = skybook_domain::OperatorTokenHash::of_presented(token).unwrap();
    let live = store
        .live_operator_token(&hash)
        .await
        .unwrap()
        .expect("stored by its hash");
    assert!(live.read_only);
    assert_eq!(live.id.to_string(), id);
    let (code, out, _) = output(at(&url, &["admin", "token", "list", "--tenant", "ops"]));
    assert_eq!(code, 0);
    assert!(
        out.contains(&id) && out.contains("tenant ops read-only"),
        "{out}"
    );
    assert!(
        !out.contains(token),
        "the token is never shown again: {out}"
    );

    let (code, out, err) = output(at(&url, &["admin", "token", "revoke", &id]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("revoked"), "{out}");
    assert!(store.live_operator_token(&hash).await.unwrap().is_none());
    let (code, _, err) = output(at(&url, &["admin", "token", "revoke", &id]));
    assert_ne!(code, 0);
    assert!(err.contains("no live operator token"), "{err}");
    let (code, _, err) = output(at(&url, &["admin", "token", "revoke", "not-an-id"]));
    assert_ne!(code, 0);
    assert!(err.contains("invalid token id"), "{err}");
}

backend_tests!(
    an_operator_token_is_printed_once_listed_and_revoked,
    an_operator_adds_a_partner_and_imports_its_file
);
