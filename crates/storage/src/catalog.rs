//! Tenants and flights: what can be booked.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use skybook_domain::{
    AirportCode, Currency, Flight, FlightId, FlightNumber, Money, TenantId, TenantSlug,
};

use crate::backend::{on_pool, on_tx, on_writer};
use crate::error::{Result, StorageError};
use crate::store::Store;
use crate::tx::Tx;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: TenantSlug,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct NewFlight {
    pub number: FlightNumber,
    pub origin: AirportCode,
    pub destination: AirportCode,
    pub departs_at: DateTime<Utc>,
    pub capacity: u32,
    pub fare: Money,
}

/// Optional filters for a tenant's flights; `date` is the UTC departure day. Only flights departing at or after
/// `after` (when set) are listed: a search should not offer a flight that has left.
#[derive(Debug, Clone, Default)]
pub struct FlightSearch {
    pub after: Option<DateTime<Utc>>,
    pub origin: Option<AirportCode>,
    pub destination: Option<AirportCode>,
    pub date: Option<NaiveDate>,
    pub limit: u32,
}

#[derive(sqlx::FromRow)]
pub(crate) struct FlightRow {
    id: FlightId,
    tenant_id: TenantId,
    number: FlightNumber,
    origin: AirportCode,
    destination: AirportCode,
    departs_at: DateTime<Utc>,
    capacity: i32,
    seats_sold: i32,
    fare_minor: i64,
    currency: Currency,
}

impl TryFrom<FlightRow> for Flight {
    type Error = StorageError;
    fn try_from(r: FlightRow) -> Result<Self> {
        let count = |v: i32| {
            u32::try_from(v)
                .map_err(|_| StorageError::Corrupt(format!("flight {}: negative seat count", r.id)))
        };
        Ok(Flight {
            id: r.id,
            tenant_id: r.tenant_id,
            number: r.number,
            origin: r.origin,
            destination: r.destination,
            departs_at: r.departs_at,
            capacity: count(r.capacity)?,
            seats_sold: count(r.seats_sold)?,
            fare: Money::new(r.fare_minor, r.currency),
        })
    }
}

const FLIGHT_COLUMNS: &str =
    "id, tenant_id, number, origin, destination, departs_at, capacity, seats_sold, fare_minor, currency";

pub(crate) fn flight_by_id() -> String {
    format!("SELECT {FLIGHT_COLUMNS} FROM flights WHERE tenant_id = $1 AND id = $2")
}

impl Tx {
    /// The flight, read in the booking's claim transaction (no lock: seats are taken by one conditional update,
    /// in [`Tx::place_booking`]).
    pub async fn flight(&mut self, tenant: TenantId, id: FlightId) -> Result<Option<Flight>> {
        let sql = flight_by_id();
        let row: Option<FlightRow> =
            on_tx!(self, c => sqlx::query_as(&sql).bind(tenant).bind(id).fetch_optional(c).await)?;
        row.map(Flight::try_from).transpose()
    }
}

/// Tenants already looked up, by slug: every API request names its tenant, and a tenant row is never updated
/// or deleted (nothing in skybook does either), so a found tenant stays right for the life of the process and
/// the lookup costs a database round trip only the first time. Misses are not kept: a tenant created later (by
/// another node's seeding) is found on its first request. Should tenants ever become renamable or deletable,
/// this cache must go or be invalidated with them.
#[derive(Debug, Default)]
pub(crate) struct TenantCache(std::sync::RwLock<std::collections::HashMap<TenantSlug, Tenant>>);

impl TenantCache {
    /// More than any deployment has; past it the cache starts over rather than grow without bound.
    const LIMIT: usize = 10_000;

    fn get(&self, slug: &TenantSlug) -> Option<Tenant> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(slug)
            .cloned()
    }

    fn keep(&self, tenant: &Tenant) {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::LIMIT {
            map.clear();
        }
        map.insert(tenant.slug.clone(), tenant.clone());
    }
}

impl Store {
    /// The tenant with this slug (cached once found, see [`TenantCache`]).
    pub async fn tenant_by_slug(&self, slug: &TenantSlug) -> Result<Option<Tenant>> {
        if let Some(tenant) = self.tenants.get(slug) {
            return Ok(Some(tenant));
        }
        let sql = "SELECT id, slug, name FROM tenants WHERE slug = $1";
        let found: Option<Tenant> =
            on_pool!(&self.backend, c => sqlx::query_as(sql).bind(slug).fetch_optional(c).await)?;
        if let Some(tenant) = &found {
            self.tenants.keep(tenant);
        }
        Ok(found)
    }

    /// Every tenant, by slug.
    pub async fn tenants(&self) -> Result<Vec<Tenant>> {
        let sql = "SELECT id, slug, name FROM tenants ORDER BY slug";
        Ok(on_pool!(&self.backend, c => sqlx::query_as(sql).fetch_all(c).await)?)
    }

    /// Creates a tenant; `None` if the slug is taken (an operator's command says so rather than reuse it).
    pub async fn create_tenant(&self, slug: &TenantSlug, name: &str) -> Result<Option<Tenant>> {
        let sql = "INSERT INTO tenants (id, slug, name, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (slug) DO NOTHING";
        let id = TenantId::new();
        let n = on_writer!(&self.backend, c => sqlx::query(sql).bind(id).bind(slug).bind(name).bind(Utc::now()).execute(c).await.map(|r| r.rows_affected()))?;
        Ok((n == 1).then(|| Tenant {
            id,
            slug: slug.clone(),
            name: name.to_owned(),
        }))
    }

    pub async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>> {
        let sql = "SELECT id, slug, name FROM tenants WHERE id = $1";
        Ok(on_pool!(&self.backend, c => sqlx::query_as(sql).bind(id).fetch_optional(c).await)?)
    }

    /// Creates the tenant if its slug is new; either way returns it. Idempotent, for seeding.
    pub async fn ensure_tenant(&self, slug: &TenantSlug, name: &str) -> Result<Tenant> {
        let mut tx = self.begin().await?;
        let sql = "INSERT INTO tenants (id, slug, name, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (slug) DO NOTHING";
        on_tx!(tx, c => sqlx::query(sql).bind(TenantId::new()).bind(slug).bind(name).bind(Utc::now()).execute(c).await.map(|r| r.rows_affected()))?;
        tx.commit().await?;
        self.tenant_by_slug(slug)
            .await?
            .ok_or_else(|| StorageError::Corrupt(format!("tenant {slug} vanished")))
    }

    /// Inserts the flight unless the tenant already has that number departing at that time. Idempotent.
    pub async fn ensure_flight(&self, tenant: TenantId, flight: &NewFlight) -> Result<()> {
        let capacity = i32::try_from(flight.capacity)
            .map_err(|_| StorageError::Corrupt("capacity too large".into()))?;
        let mut tx = self.begin().await?;
        let sql = "INSERT INTO flights (id, tenant_id, number, origin, destination, departs_at, capacity, seats_sold, fare_minor, currency, created_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $10)
                   ON CONFLICT (tenant_id, number, departs_at) DO NOTHING";
        on_tx!(tx, c => sqlx::query(sql)
            .bind(FlightId::new()).bind(tenant).bind(&flight.number).bind(&flight.origin).bind(&flight.destination)
            .bind(flight.departs_at).bind(capacity).bind(flight.fare.amount_minor).bind(&flight.fare.currency).bind(Utc::now())
            .execute(c).await.map(|r| r.rows_affected()))?;
        tx.commit().await
    }

    pub async fn flight(&self, tenant: TenantId, id: FlightId) -> Result<Option<Flight>> {
        let sql = flight_by_id();
        let row: Option<FlightRow> = on_pool!(&self.backend, c => sqlx::query_as(&sql).bind(tenant).bind(id).fetch_optional(c).await)?;
        row.map(Flight::try_from).transpose()
    }

    pub async fn search_flights(
        &self,
        tenant: TenantId,
        search: &FlightSearch,
    ) -> Result<Vec<Flight>> {
        let Some((from, to)) = departures_searched(search) else {
            return Ok(Vec::new());
        };
        let sql = format!(
            "SELECT {FLIGHT_COLUMNS} FROM flights
             WHERE tenant_id = $1
               AND (CAST($2 AS TEXT) IS NULL OR origin = $2)
               AND (CAST($3 AS TEXT) IS NULL OR destination = $3)
               AND departs_at >= $4 AND departs_at < $5
             ORDER BY departs_at, number
             LIMIT $6"
        );
        let limit = i64::from(if search.limit == 0 { 100 } else { search.limit });
        let rows: Vec<FlightRow> = on_pool!(&self.backend, c => sqlx::query_as(&sql)
            .bind(tenant)
            .bind(search.origin.as_ref().map(|a| a.as_str()))
            .bind(search.destination.as_ref().map(|a| a.as_str()))
            .bind(from)
            .bind(to)
            .bind(limit)
            .fetch_all(c)
            .await)?;
        rows.into_iter().map(Flight::try_from).collect()
    }
}

/// The departure times `[from, to)` that `search` lists, or `None` when no stored flight can match.
///
/// Every step is checked or clamped, so no search panics here whatever its date (the web layer only passes
/// days near today, but the store does not rely on it: `+262142-12-31` has no next midnight in chrono, and
/// once panicked here). The times are kept within `[1970, 9999-12-31)`: bounds both engines store and that
/// sort correctly as SQLite text, where `+262142-…` would sort before `2026-…` and match every flight. A day
/// outside that range gets `None`, an empty result rather than an error: it is a valid day on which no
/// searchable flight departs, and an error here would reach the client as a 500.
fn departures_searched(search: &FlightSearch) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let floor = DateTime::UNIX_EPOCH;
    let ceiling = NaiveDate::from_ymd_opt(9999, 12, 31)
        .expect("a valid date")
        .and_time(NaiveTime::MIN)
        .and_utc();
    let (from, to) = match search.date {
        Some(day) => {
            let start = day.and_time(NaiveTime::MIN).and_utc();
            let end = start
                .checked_add_signed(TimeDelta::days(1))
                .unwrap_or(ceiling);
            (start.max(floor), end.min(ceiling))
        }
        None => (floor, ceiling),
    };
    let from = search.after.map_or(from, |after| from.max(after));
    (from < to).then_some((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(day: NaiveDate) -> FlightSearch {
        FlightSearch {
            date: Some(day),
            ..FlightSearch::default()
        }
    }

    #[test]
    fn a_day_is_searched_from_midnight_to_midnight() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let (from, to) = departures_searched(&on(day)).unwrap();
        assert_eq!(from.to_rfc3339(), "2026-11-30T00:00:00+00:00");
        assert_eq!(to.to_rfc3339(), "2026-12-01T00:00:00+00:00");
        let later = Utc::now();
        let leaving = FlightSearch {
            after: Some(later),
            ..on(later.date_naive())
        };
        assert_eq!(departures_searched(&leaving).unwrap().0, later);
    }

    #[test]
    fn days_outside_the_stored_range_find_nothing_rather_than_panic() {
        let far = [
            NaiveDate::MAX,
            NaiveDate::MIN,
            NaiveDate::from_ymd_opt(9999, 12, 31).unwrap(),
            NaiveDate::from_ymd_opt(1900, 1, 1).unwrap(),
        ];
        for day in far {
            assert_eq!(departures_searched(&on(day)), None, "{day}");
        }
        let after_everything = FlightSearch {
            after: Some(DateTime::<Utc>::MAX_UTC),
            ..FlightSearch::default()
        };
        assert_eq!(departures_searched(&after_everything), None);
    }
}
