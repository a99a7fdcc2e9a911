//! The database both sides are measured on: a tenant, its flights, and a history of past bookings.

use std::process::Command;

use anyhow::{bail, Context, Result};
use skybook_domain::{AirportCode, Currency, FlightNumber, Money, TenantSlug};
use skybook_storage::{NewFlight, Store};

/// Seeded ids the load and pgbench both use.
pub(crate) struct Seeded {
    pub(crate) tenant: String,
    pub(crate) flights: Vec<String>,
}

impl Seeded {
    /// The flight ids as SQL literals, comma-separated (for an `ARRAY[...]`).
    pub(crate) fn flight_list(&self) -> String {
        let quoted: Vec<String> = self.flights.iter().map(|f| format!("'{f}'")).collect();
        quoted.join(",")
    }
}

/// A tenant with `count` flights of ample capacity.
pub(crate) async fn seed(url: &str, count: usize) -> Result<Seeded> {
    let store = Store::connect(url, &Default::default()).await?;
    let tenant = store
        .ensure_tenant(&TenantSlug::parse("bench")?, "Bench Air")
        .await?;
    let departs_at = chrono::Utc::now() + chrono::Duration::days(7);
    for i in 0..count {
        let flight = NewFlight {
            number: FlightNumber::parse(&format!("BX{}", i + 1))?,
            origin: AirportCode::parse("DUB")?,
            destination: AirportCode::parse("LHR")?,
            departs_at,
            capacity: 100_000_000,
            fare: Money::new(9599, Currency::parse("EUR")?),
        };
        store.ensure_flight(tenant.id, &flight).await?;
    }
    let search = skybook_storage::FlightSearch {
        limit: 1000,
        ..Default::default()
    };
    let flights = store.search_flights(tenant.id, &search).await?;
    store.close().await;
    let seeded = Seeded {
        tenant: tenant.id.to_string(),
        flights: flights.iter().map(|f| f.id.to_string()).collect(),
    };
    if url.starts_with("postgres") {
        add_history(url, &seeded)?;
    }
    Ok(seeded)
}

/// Past bookings in the tables, then `ANALYZE`: both skybook and pgbench are measured on a database that has
/// been in use, as in production. On brand-new empty tables PostgreSQL plans without statistics, and a plan a
/// connection cached then (skybook's pooled connections keep their prepared statements) can scan a whole
/// index until autovacuum's first ANALYZE, a minute or more later — longer than a run. Measuring that
/// start-up artefact for skybook, and pgbench on the analysed tables it leaves, would compare different
/// databases.
pub(crate) fn add_history(url: &str, s: &Seeded) -> Result<()> {
    let (t, list, count) = (&s.tenant, s.flight_list(), s.flights.len());
    let sql = format!(
        r#"INSERT INTO bookings (id, tenant_id, reference, flight_id, status, contact_email, passengers, seats, amount_minor, currency, card_last4, card_brand, card_fingerprint, entity_fingerprint, charge_id, hold_expires_at, created_at, updated_at)
SELECT md5('h' || g)::uuid, '{t}', upper(substr(md5('hr' || g), 1, 16)), (ARRAY[{list}]::uuid[])[1 + g % {count}], 'confirmed', 'history@example.com', '[{{"given_name":"Past","family_name":"Traveller"}}]', 1, 9599, 'EUR', '4242', 'visa', md5('c') || md5('c'), md5('he' || g) || md5('eh' || g), 'ch_h' || md5('hc' || g), now() - interval '1 day', now() - interval '2 days', now() - interval '2 days'
FROM generate_series(1, {HISTORY}) g;
INSERT INTO idempotency_keys (tenant_id, key, request_fingerprint, booking_id, locked_until, response_status, response_body, created_at, updated_at)
SELECT '{t}', 'hist-' || g, md5(g::text) || md5(g::text), md5('h' || g)::uuid, NULL, 201, '{{}}', now() - interval '2 days', now() - interval '2 days'
FROM generate_series(1, {HISTORY}) g;
INSERT INTO outbox_emails (id, tenant_id, booking_id, kind, recipient, message_id, created_at, sent_at)
SELECT md5('ho' || g)::uuid, '{t}', md5('h' || g)::uuid, 'booking_confirmation', 'history@example.com', '<hist-' || g || '@bench>', now() - interval '2 days', now() - interval '2 days'
FROM generate_series(1, {HISTORY}) g;
ANALYZE;
"#
    );
    psql(url, &sql).context("adding history")?;
    Ok(())
}

/// Runs `sql` with psql on `url`; returns what it printed (unaligned, tuples only).
pub(crate) fn psql(url: &str, sql: &str) -> Result<String> {
    let bin = std::env::var("PG_BIN")
        .map(|b| format!("{b}/psql"))
        .unwrap_or_else(|_| "psql".into());
    let output = Command::new(&bin)
        .args(["-q", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .arg(url.split('?').next().unwrap())
        .output()
        .with_context(|| format!("running {bin}"))?;
    if !output.status.success() {
        bail!("psql failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .trim_end()
        .to_owned())
}

/// The final response skybook stored for one of the run's bookings, for pgbench to store the same bytes.
pub(crate) fn stored_response(url: &str) -> Result<String> {
    let body = psql(
        url,
        "SELECT response_body FROM idempotency_keys WHERE key LIKE 'bench-%' AND response_status = 201 LIMIT 1",
    )?;
    if body.is_empty() {
        bail!("the skybook run stored no 201 response");
    }
    Ok(body)
}

/// Past bookings [`add_history`] puts in before a run.
pub(crate) const HISTORY: usize = 20_000;
