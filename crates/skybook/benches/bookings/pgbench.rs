//! The database's own ceiling: pgbench running the SQL of one booking.

use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::cpu::{machine_cpu, postgres_cpu, steal_cpu};
use crate::seed::{stored_response, Seeded};
use crate::Knobs;

/// The SQL skybook runs for one booking on PostgreSQL (Tx 1, then Tx 2 as one statement), as a pgbench script:
/// the statement texts are the storage layer's own ([`skybook_storage::statements`]), with this run's values
/// in place of their parameters. `response` is a final response skybook stored in the run, so both write rows
/// of the same size. (The tenant lookup is not here: skybook keeps tenants it has found.)
pub(crate) fn pgbench_script(s: &Seeded, response: &str) -> Result<String> {
    use skybook_storage::statements;
    let t = format!("'{}'", s.tenant);
    // An E'' literal with every colon escaped: pgbench would read `:28` (a time) as a variable. PostgreSQL
    // decodes the escapes once, when the statement is prepared.
    let response = format!(
        "E'{}'",
        response
            .replace('\\', "\\\\")
            .replace('\'', "''")
            .replace(':', "\\x3a")
    );
    // Each booking picks one of the seeded flights, as the HTTP clients do.
    let f = format!("(ARRAY[{}]::uuid[])[:f]", s.flight_list());
    // skybook's ids are UUIDv7 (time-ordered: new rows go to the right edge of the primary-key index); random
    // ids here would scatter the inserts and cost pgbench more. `now()` is fixed within a transaction, so Tx 1's
    // statements agree on the booking id; Tx 2 takes it from the row Tx 1 returned (`\gset`).
    let v7 = |salt: &str| {
        format!("(lpad(to_hex((extract(epoch from now()) * 1000)::bigint), 12, '0') || substr(md5({salt}), 1, 20))::uuid")
    };
    let (booking_id, outbox_id) = (v7(":client_id || ':' || :n"), v7(":client_id || 'o' || :n"));
    let key = "'pgb-' || :client_id || '-' || :n";
    let claim = with_values(
        statements::claim_key(),
        &[
            &t,
            key,
            "md5(:n::text) || md5(:client_id::text)",
            "now() + interval '60 seconds'",
            "now()",
            "gen_random_uuid()",
        ],
    )?;
    let flight = with_values(&statements::flight(), &[&t, &f])?;
    let place = with_values(
        &statements::place_booking(),
        &[
            &booking_id,
            &t,
            "upper(substr(md5(:n || 'r' || :client_id), 1, 16))",
            &f,
            "'bench@example.com'",
            r#"'[{"given_name":"Bench","family_name":"Pgbench"}]'"#,
            "1",
            "9599",
            "'EUR'",
            "'4242'",
            "'visa'",
            "md5('c') || md5('c')",
            "md5(:n || 'e' || :client_id) || md5(:client_id || 'e' || :n)",
            "now() + interval '15 minutes'",
            "now()",
            key,
        ],
    )?;
    let settle = with_values(
        &statements::settle_confirmed(),
        &[
            &t,
            ":placed_id",
            "'confirmed'",
            "'ch_' || md5(:client_id || 'ch' || :n)",
            "NULL",
            "now()",
            "NULL",
            "'seat_held'",
            "'payment_pending'",
            &outbox_id,
            "'booking_confirmation'",
            "'bench@example.com'",
            "'<' || :client_id || '-' || :n || '@bench>'",
            "now()",
            "201",
            &response,
            "now()",
            key,
        ],
    )?;
    let count = s.flights.len();
    Ok(format!(
        "\\set n random(1, 2000000000)\n\\set f random(1, {count})\nBEGIN;\n{};\n{};\n{} \\gset placed_\nCOMMIT;\n{};\n",
        one_line(&claim),
        one_line(&flight),
        one_line(&place),
        one_line(&settle)
    ))
}

/// `sql` with each parameter `$N` replaced by `values[N - 1]`; every parameter must have a value and every
/// value a parameter, so a statement that grows a parameter fails the benchmark instead of measuring
/// something else.
fn with_values(sql: &str, values: &[&str]) -> Result<String> {
    let mut out = String::with_capacity(sql.len() * 2);
    let mut used = vec![false; values.len()];
    let mut chars = sql.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let mut digits = String::new();
        while let Some(&(_, d)) = chars.peek() {
            if !d.is_ascii_digit() {
                break;
            }
            digits.push(d);
            chars.next();
        }
        let n: usize = digits
            .parse()
            .with_context(|| format!("a lone $ in {sql}"))?;
        let value = values
            .get(n.wrapping_sub(1))
            .with_context(|| format!("no value for ${n} in {sql}"))?;
        used[n - 1] = true;
        out.push_str(value);
    }
    if let Some(unused) = used.iter().position(|u| !u) {
        bail!("${} has a value but is not in {sql}", unused + 1);
    }
    Ok(out)
}

/// The statement on one line: pgbench reads a meta-command (`\gset`) only at the end of a statement's line.
/// (Only line breaks and their indentation go; string literals in these statements hold no line breaks.)
fn one_line(sql: &str) -> String {
    sql.lines().map(str::trim).collect::<Vec<_>>().join(" ")
}

/// What pgbench achieved at one connection count: transactions (= bookings) per second, and CPU per
/// transaction of the PostgreSQL processes and of the whole machine (pgbench itself included), sampled over
/// the measured window.
pub(crate) struct Ceiling {
    pub(crate) tps: f64,
    pub(crate) postgres_ms: f64,
    pub(crate) machine_ms: f64,
    pub(crate) steal_ms: f64,
}

/// Runs pgbench with the script at `clients` connections.
pub(crate) fn pgbench(
    url: &str,
    seeded: &Seeded,
    knobs: &Knobs,
    clients: usize,
) -> Result<Ceiling> {
    let dir = skybook_testkit::test_dir("bench-pgbench");
    let script = dir.join("booking.sql");
    std::fs::write(&script, pgbench_script(seeded, &stored_response(url)?)?)?;
    let bin = std::env::var("PG_BIN")
        .map(|b| format!("{b}/pgbench"))
        .unwrap_or_else(|_| "pgbench".into());
    let total = knobs.seconds + knobs.warmup;
    let child = Command::new(&bin)
        .args([
            "-n",
            "-M",
            "prepared",
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-T",
            &total.to_string(),
            "-f",
        ])
        .arg(&script)
        .arg(url.split('?').next().unwrap())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("running {bin}"))?;
    // CPU is sampled inside the run (pgbench's backends exit with it), over the same window skybook's is.
    std::thread::sleep(Duration::from_secs(knobs.warmup));
    let before = (postgres_cpu(), machine_cpu(), steal_cpu());
    std::thread::sleep(Duration::from_secs(knobs.seconds.saturating_sub(1).max(1)));
    let after = (postgres_cpu(), machine_cpu(), steal_cpu());
    let window = knobs.seconds.saturating_sub(1).max(1) as f64;
    let output = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "pgbench failed: {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    std::fs::write(dir.join("pgbench.out"), stdout.as_bytes())?;
    let tps: f64 = stdout
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l["tps = ".len()..].split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no tps line in pgbench output")?;
    let per_tx = |cpu: f64| cpu * 1000.0 / (tps * window).max(1.0);
    Ok(Ceiling {
        tps,
        postgres_ms: per_tx(after.0 - before.0),
        machine_ms: per_tx(after.1 - before.1),
        steal_ms: per_tx(after.2 - before.2),
    })
}
