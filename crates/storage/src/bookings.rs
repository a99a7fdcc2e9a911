//! Booking rows: reads scoped by tenant, and the pipeline's statements inside a [`Tx`].

use chrono::{DateTime, Utc};
use skybook_domain::{
    BookingId, BookingReference, BookingStatus, CardFingerprint, Currency, Email,
    EntityFingerprint, FailureReason, FlightId, IllegalTransition, Money, Passenger, TenantId,
};

use crate::backend::{on_pool, on_tx, on_writer};
use crate::error::{Result, StorageError};
use crate::store::Store;
use crate::tx::Tx;

/// A stored booking. Holds no card data beyond last 4 digits and brand.
#[derive(Debug, Clone)]
pub struct BookingRecord {
    pub id: BookingId,
    pub tenant_id: TenantId,
    pub reference: BookingReference,
    pub flight_id: FlightId,
    pub status: BookingStatus,
    pub contact_email: Email,
    pub passengers: Vec<Passenger>,
    pub seats: u32,
    pub amount: Money,
    pub card_last4: String,
    pub card_brand: String,
    pub entity_fingerprint: EntityFingerprint,
    pub charge_id: Option<String>,
    pub failure_reason: Option<String>,
    pub hold_expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct BookingRow {
    id: BookingId,
    tenant_id: TenantId,
    reference: BookingReference,
    flight_id: FlightId,
    status: BookingStatus,
    contact_email: Email,
    passengers: String,
    seats: i32,
    amount_minor: i64,
    currency: Currency,
    card_last4: String,
    card_brand: String,
    entity_fingerprint: EntityFingerprint,
    charge_id: Option<String>,
    failure_reason: Option<String>,
    hold_expires_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

pub(crate) const BOOKING_COLUMNS: &str = "id, tenant_id, reference, flight_id, status, contact_email, passengers, seats, amount_minor, \
     currency, card_last4, card_brand, entity_fingerprint, charge_id, failure_reason, hold_expires_at, created_at, updated_at";

impl TryFrom<BookingRow> for BookingRecord {
    type Error = StorageError;
    fn try_from(r: BookingRow) -> Result<Self> {
        let corrupt = |what: &str| StorageError::Corrupt(format!("booking {}: {what}", r.id));
        Ok(Self {
            passengers: serde_json::from_str(&r.passengers).map_err(|_| corrupt("passengers"))?,
            seats: u32::try_from(r.seats).map_err(|_| corrupt("seats"))?,
            amount: Money::new(r.amount_minor, r.currency),
            id: r.id,
            tenant_id: r.tenant_id,
            reference: r.reference,
            flight_id: r.flight_id,
            status: r.status,
            contact_email: r.contact_email,
            card_last4: r.card_last4,
            card_brand: r.card_brand,
            entity_fingerprint: r.entity_fingerprint,
            charge_id: r.charge_id,
            failure_reason: r.failure_reason,
            hold_expires_at: r.hold_expires_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// What Tx 1 writes for a new booking.
#[derive(Debug, Clone)]
pub struct NewBookingRow {
    pub id: BookingId,
    pub tenant_id: TenantId,
    pub reference: BookingReference,
    pub flight_id: FlightId,
    pub contact_email: Email,
    pub passengers: Vec<Passenger>,
    pub amount: Money,
    pub card_last4: String,
    pub card_brand: String,
    pub card_fingerprint: CardFingerprint,
    pub entity_fingerprint: EntityFingerprint,
    pub hold_expires_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// The result of inserting a booking under the one-live-booking-per-entity index.
#[derive(Debug)]
pub enum InsertBooking {
    /// Inserted, as stored (read back by `RETURNING`, so no second query is needed).
    Inserted(Box<BookingRecord>),
    /// A live booking for the same entity exists (it may have committed a moment ago on another node).
    Duplicate(Box<BookingRecord>),
    /// The random reference collided with another booking's; draw a new one and try again.
    ReferenceTaken,
}

/// A new booking's row, as `seat_held`; parameters `$1`–`$15` as [`bind_booking_row!`] binds them. A conflict on
/// any unique index (the live-entity index, the reference) inserts nothing.
pub(crate) const INSERT_BOOKING: &str = "INSERT INTO bookings (id, tenant_id, reference, flight_id, status, contact_email, passengers, seats,
    amount_minor, currency, card_last4, card_brand, card_fingerprint, entity_fingerprint, hold_expires_at, created_at, updated_at,
    fingerprint_version)
    VALUES ($1, $2, $3, $4, 'seat_held', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, 2) ON CONFLICT DO NOTHING";

/// The entity fingerprint's current form (see the `entity_fingerprint_v2` migration).
pub const FINGERPRINT_VERSION: i32 = 2;

/// Binds a new booking's fifteen parameters of [`INSERT_BOOKING`] to the query `$q`, in order; `$passengers`
/// and `$seats` come from [`booking_row_values`].
macro_rules! bind_booking_row {
    ($q:expr, $b:expr, $passengers:expr, $seats:expr) => {
        $q.bind($b.id)
            .bind($b.tenant_id)
            .bind(&$b.reference)
            .bind($b.flight_id)
            .bind(&$b.contact_email)
            .bind($passengers)
            .bind($seats)
            .bind($b.amount.amount_minor)
            .bind(&$b.amount.currency)
            .bind(&$b.card_last4)
            .bind(&$b.card_brand)
            .bind(&$b.card_fingerprint)
            .bind(&$b.entity_fingerprint)
            .bind($b.hold_expires_at)
            .bind($b.now)
    };
}
pub(crate) use bind_booking_row;

/// The stored forms of a new booking's passengers (JSON text) and seat count.
pub(crate) fn booking_row_values(b: &NewBookingRow) -> Result<(String, i32)> {
    let passengers =
        serde_json::to_string(&b.passengers).map_err(|e| StorageError::Corrupt(e.to_string()))?;
    let seats = i32::try_from(b.passengers.len())
        .map_err(|_| StorageError::Corrupt("too many passengers".into()))?;
    Ok((passengers, seats))
}

/// A conditional status change: applied only while the booking is in one of `from`.
///
/// Built only through [`StatusChange::new`], which refuses a transition the booking state machine forbids, so
/// no build (release included) can apply one.
#[derive(Debug, Clone)]
pub struct StatusChange<'a> {
    pub(crate) from: &'a [BookingStatus],
    pub(crate) to: BookingStatus,
    pub(crate) charge_id: Option<&'a str>,
    pub(crate) failure_reason: Option<FailureReason>,
    /// Applied only if nobody has touched the booking since this instant (the sentinel's guard: a request that
    /// resumed the booking after the sentinel listed it owns it now).
    pub(crate) untouched_before: Option<DateTime<Utc>>,
}

impl<'a> StatusChange<'a> {
    /// From any of `from` to `to`, if every one of those is a transition of the state machine.
    pub fn new(from: &'a [BookingStatus], to: BookingStatus) -> Result<Self, IllegalTransition> {
        if let Some(&bad) = from.iter().find(|f| !f.can_become(to)) {
            return Err(IllegalTransition { from: bad, to });
        }
        Ok(Self {
            from,
            to,
            charge_id: None,
            failure_reason: None,
            untouched_before: None,
        })
    }

    /// Records the charge that paid for the booking.
    pub fn with_charge(mut self, charge_id: &'a str) -> Self {
        self.charge_id = Some(charge_id);
        self
    }

    /// Records why the booking failed.
    pub fn with_failure(mut self, reason: FailureReason) -> Self {
        self.failure_reason = Some(reason);
        self
    }

    /// Applies only if nothing has touched the booking since `instant`.
    pub fn untouched_before(mut self, instant: Option<DateTime<Utc>>) -> Self {
        self.untouched_before = instant;
        self
    }

    pub fn to(&self) -> BookingStatus {
        self.to
    }
}

impl Store {
    pub async fn booking_by_reference(
        &self,
        tenant: TenantId,
        reference: &BookingReference,
    ) -> Result<Option<BookingRecord>> {
        let sql = format!(
            "SELECT {BOOKING_COLUMNS} FROM bookings WHERE tenant_id = $1 AND reference = $2"
        );
        let row: Option<BookingRow> = on_pool!(&self.backend, c => sqlx::query_as(&sql).bind(tenant).bind(reference).fetch_optional(c).await)?;
        row.map(BookingRecord::try_from).transpose()
    }

    pub async fn booking(&self, tenant: TenantId, id: BookingId) -> Result<Option<BookingRecord>> {
        let sql =
            format!("SELECT {BOOKING_COLUMNS} FROM bookings WHERE tenant_id = $1 AND id = $2");
        let row: Option<BookingRow> = on_pool!(&self.backend, c => sqlx::query_as(&sql).bind(tenant).bind(id).fetch_optional(c).await)?;
        row.map(BookingRecord::try_from).transpose()
    }
}

/// The sentinel's reads. [`Store::unsettled_bookings`] spans every tenant on purpose (the sentinel is the
/// operator's); each booking it returns carries its tenant id, which scopes everything done with it after.
impl Store {
    /// Bookings still `seat_held` or `payment_pending` that nothing has touched since `untouched_since`, oldest
    /// first.
    pub async fn unsettled_bookings(
        &self,
        untouched_since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<BookingRecord>> {
        let sql = format!(
            "SELECT {BOOKING_COLUMNS} FROM bookings WHERE status IN ('seat_held', 'payment_pending') \
             AND updated_at < $1 ORDER BY updated_at LIMIT $2"
        );
        let rows: Vec<BookingRow> = on_pool!(&self.backend, c => sqlx::query_as(&sql).bind(untouched_since).bind(limit).fetch_all(c).await)?;
        rows.into_iter().map(BookingRecord::try_from).collect()
    }

    /// The live booking (held, pending or confirmed) of one entity, if any.
    pub async fn live_booking_by_entity(
        &self,
        tenant: TenantId,
        entity: &EntityFingerprint,
    ) -> Result<Option<BookingRecord>> {
        let sql = format!(
            "SELECT {BOOKING_COLUMNS} FROM bookings WHERE tenant_id = $1 AND entity_fingerprint = $2 \
             AND status IN ('seat_held', 'payment_pending', 'confirmed')"
        );
        let row: Option<BookingRow> = on_pool!(&self.backend, c => sqlx::query_as(&sql).bind(tenant).bind(entity).fetch_optional(c).await)?;
        row.map(BookingRecord::try_from).transpose()
    }
}

/// What an entity fingerprint is computed from, for a live booking fingerprinted under an older form.
#[derive(Debug, Clone)]
pub struct LegacyFingerprint {
    pub tenant_id: TenantId,
    pub id: BookingId,
    pub flight_id: FlightId,
    pub passengers: Vec<Passenger>,
    pub card_fingerprint: CardFingerprint,
}

#[derive(sqlx::FromRow)]
struct LegacyFingerprintRow {
    tenant_id: TenantId,
    id: BookingId,
    flight_id: FlightId,
    passengers: String,
    card_fingerprint: CardFingerprint,
}

/// Live bookings whose entity fingerprint is of an older form, for the pipeline to fingerprint again.
impl Store {
    /// Up to `limit` live bookings (any tenant: each carries its tenant id) fingerprinted under an older form.
    pub async fn legacy_fingerprinted_bookings(
        &self,
        limit: i64,
    ) -> Result<Vec<LegacyFingerprint>> {
        let sql = format!(
            "SELECT tenant_id, id, flight_id, passengers, card_fingerprint FROM bookings \
             WHERE fingerprint_version < {FINGERPRINT_VERSION} \
             AND status IN ('seat_held', 'payment_pending', 'confirmed') ORDER BY id LIMIT $1"
        );
        let rows: Vec<LegacyFingerprintRow> =
            on_pool!(&self.backend, c => sqlx::query_as(&sql).bind(limit).fetch_all(c).await)?;
        rows.into_iter()
            .map(|r| {
                Ok(LegacyFingerprint {
                    passengers: serde_json::from_str(&r.passengers).map_err(|_| {
                        StorageError::Corrupt(format!("booking {}: passengers", r.id))
                    })?,
                    tenant_id: r.tenant_id,
                    id: r.id,
                    flight_id: r.flight_id,
                    card_fingerprint: r.card_fingerprint,
                })
            })
            .collect()
    }

    /// Gives a legacy booking its current fingerprint. `false` (and the booking is marked current, keeping its
    /// old fingerprint) when another live booking already has that fingerprint: the two are one traveller's,
    /// made before names were compared this way, for the operators to look at.
    pub async fn refingerprint(
        &self,
        tenant: TenantId,
        id: BookingId,
        fingerprint: &EntityFingerprint,
    ) -> Result<bool> {
        let sql = format!(
            "UPDATE bookings SET entity_fingerprint = $3, fingerprint_version = {FINGERPRINT_VERSION} \
             WHERE tenant_id = $1 AND id = $2 AND fingerprint_version < {FINGERPRINT_VERSION}"
        );
        let updated = on_writer!(&self.backend, c => sqlx::query(&sql).bind(tenant).bind(id).bind(fingerprint).execute(c).await.map(|r| r.rows_affected()));
        match updated {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                let sql = format!(
                    "UPDATE bookings SET fingerprint_version = {FINGERPRINT_VERSION} WHERE tenant_id = $1 AND id = $2"
                );
                on_writer!(&self.backend, c => sqlx::query(&sql).bind(tenant).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl Tx {
    pub async fn booking(
        &mut self,
        tenant: TenantId,
        id: BookingId,
    ) -> Result<Option<BookingRecord>> {
        let sql = format!(
            "SELECT {BOOKING_COLUMNS} FROM bookings WHERE tenant_id = $1 AND id = $2{}",
            self.for_update()
        );
        let row: Option<BookingRow> =
            on_tx!(self, c => sqlx::query_as(&sql).bind(tenant).bind(id).fetch_optional(c).await)?;
        row.map(BookingRecord::try_from).transpose()
    }

    /// Inserts the booking as `seat_held` unless a live booking of the same entity exists. The partial unique
    /// index decides, so two nodes racing on the same booking cannot both insert: the second waits for the
    /// first to commit, then sees the conflict.
    pub async fn insert_booking(&mut self, b: &NewBookingRow) -> Result<InsertBooking> {
        let sql = format!("{INSERT_BOOKING} RETURNING {BOOKING_COLUMNS}");
        let inserted: Option<BookingRow> = self.run_booking_insert(b, &sql).await?;
        match inserted {
            Some(row) => Ok(InsertBooking::Inserted(Box::new(row.try_into()?))),
            None => self.insert_conflict(b).await,
        }
    }

    /// Runs `sql`, a statement built on [`INSERT_BOOKING`] with the row as its only parameters; returns the row
    /// it returns, if any.
    async fn run_booking_insert<T>(&mut self, b: &NewBookingRow, sql: &str) -> Result<Option<T>>
    where
        T: Send
            + Unpin
            + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        let (passengers, seats) = booking_row_values(b)?;
        Ok(
            on_tx!(self, c => bind_booking_row!(sqlx::query_as(sql), b, &passengers, seats).fetch_optional(c).await)?,
        )
    }

    /// Why a booking insert did nothing: a live booking of the same entity, or else its reference was taken.
    pub(crate) async fn insert_conflict(&mut self, b: &NewBookingRow) -> Result<InsertBooking> {
        let sql = format!(
            "SELECT {BOOKING_COLUMNS} FROM bookings WHERE tenant_id = $1 AND entity_fingerprint = $2
               AND status IN ('seat_held', 'payment_pending', 'confirmed')"
        );
        let live: Option<BookingRow> = on_tx!(self, c => sqlx::query_as(&sql).bind(b.tenant_id).bind(&b.entity_fingerprint).fetch_optional(c).await)?;
        match live {
            Some(row) => Ok(InsertBooking::Duplicate(Box::new(row.try_into()?))),
            None => Ok(InsertBooking::ReferenceTaken),
        }
    }

    /// Takes `seats` on the flight if that many are left: one conditional UPDATE, so concurrent bookings can
    /// never oversell. Returns whether the seats were taken.
    pub async fn take_seats(
        &mut self,
        tenant: TenantId,
        flight: FlightId,
        seats: u32,
    ) -> Result<bool> {
        let seats = i64::from(seats);
        let sql = "UPDATE flights SET seats_sold = seats_sold + $3
                   WHERE tenant_id = $1 AND id = $2 AND seats_sold + $3 <= capacity";
        let n = on_tx!(self, c => sqlx::query(sql).bind(tenant).bind(flight).bind(seats).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    pub async fn release_seats(
        &mut self,
        tenant: TenantId,
        flight: FlightId,
        seats: u32,
    ) -> Result<()> {
        let sql =
            "UPDATE flights SET seats_sold = seats_sold - $3 WHERE tenant_id = $1 AND id = $2";
        on_tx!(self, c => sqlx::query(sql).bind(tenant).bind(flight).bind(i64::from(seats)).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Marks the booking as worked on now (a request resumed it).
    pub async fn touch_booking(
        &mut self,
        tenant: TenantId,
        id: BookingId,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let sql = "UPDATE bookings SET updated_at = $3 WHERE tenant_id = $1 AND id = $2";
        on_tx!(self, c => sqlx::query(sql).bind(tenant).bind(id).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Removes a booking this same transaction inserted (when its seats turned out to be sold out).
    pub async fn discard_new_booking(&mut self, tenant: TenantId, id: BookingId) -> Result<()> {
        let sql = "DELETE FROM bookings WHERE tenant_id = $1 AND id = $2 AND status = 'seat_held'";
        on_tx!(self, c => sqlx::query(sql).bind(tenant).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Applies `change` if the booking is still in one of its `from` statuses. Returns the booking as changed
    /// (read back by `RETURNING`), or `None` when it did not apply: another actor (a retry, the sentinel) moved
    /// it first.
    pub async fn change_status(
        &mut self,
        tenant: TenantId,
        id: BookingId,
        change: &StatusChange<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<BookingRecord>> {
        let (sql, from) = status_change_sql(change);
        let row: Option<BookingRow> = on_tx!(self, c => {
            let mut q = sqlx::query_as(&sql)
                .bind(tenant).bind(id).bind(change.to).bind(change.charge_id)
                .bind(change.failure_reason.map(|r| r.as_str())).bind(now).bind(change.untouched_before);
            for s in &from {
                q = q.bind(*s);
            }
            q.fetch_optional(c).await
        })?;
        row.map(BookingRecord::try_from).transpose()
    }
}

/// The conditional `UPDATE ... RETURNING` of a [`StatusChange`], and the `from` statuses to bind after its first
/// seven parameters: tenant, booking id, new status, charge id, failure reason, now, `untouched_before`.
pub(crate) fn status_change_sql(change: &StatusChange<'_>) -> (String, Vec<&'static str>) {
    let from: Vec<&'static str> = change.from.iter().map(BookingStatus::as_str).collect();
    let placeholders: Vec<String> = (0..from.len()).map(|i| format!("${}", i + 8)).collect();
    let sql = format!(
        "UPDATE bookings SET status = $3, charge_id = COALESCE($4, charge_id), failure_reason = $5, updated_at = $6
         WHERE tenant_id = $1 AND id = $2 AND ($7 IS NULL OR updated_at < $7) AND status IN ({})
         RETURNING {BOOKING_COLUMNS}",
        placeholders.join(", ")
    );
    (sql, from)
}
