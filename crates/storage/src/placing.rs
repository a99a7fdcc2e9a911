//! Placing a new booking inside the claim transaction (Tx 1): the row, its seats, and its id on the request's
//! idempotency key.
//!
//! On PostgreSQL the three writes are one statement (data-modifying CTEs: the seats are taken only if the row
//! went in, the key is pointed at it only if the seats were taken), which saves two round trips on every
//! booking; the transaction around it still decides what is kept. SQLite runs the same three steps as separate
//! statements ([`Tx::insert_booking`], [`Tx::take_seats`], [`Tx::attach_booking_to_key`]).

use skybook_domain::IdempotencyKey;

use crate::backend::on_tx;
use crate::bookings::{
    bind_booking_row, booking_row_values, BookingRecord, BookingRow, InsertBooking, NewBookingRow,
    BOOKING_COLUMNS, INSERT_BOOKING,
};
use crate::error::Result;
use crate::tx::{Tx, TxInner};

/// What [`Tx::place_booking`] did.
#[derive(Debug)]
pub enum PlaceBooking {
    /// Inserted as `seat_held`, its seats taken and its id on the key.
    Held(Box<BookingRecord>),
    /// Inserted, but the flight has not that many seats left: nothing else was written. The caller discards
    /// the row ([`Tx::discard_new_booking`]) or rolls back.
    SoldOut(Box<BookingRecord>),
    /// A live booking for the same entity exists; nothing was written.
    Duplicate(Box<BookingRecord>),
    /// The random reference collided with another booking's; draw a new one and try again.
    ReferenceTaken,
}

#[derive(sqlx::FromRow)]
struct PlacedRow {
    #[sqlx(flatten)]
    booking: BookingRow,
    seated: bool,
}

impl Tx {
    /// Inserts `b`, takes its seats (one conditional update, so concurrent bookings never oversell) and attaches
    /// it to `key`, in that order, each step only if the one before succeeded.
    pub async fn place_booking(
        &mut self,
        b: &NewBookingRow,
        key: &IdempotencyKey,
    ) -> Result<PlaceBooking> {
        if !matches!(self.inner, TxInner::Postgres(_)) {
            return self.place_step_by_step(b, key).await;
        }
        let sql = place_statement();
        let (passengers, seats) = booking_row_values(b)?;
        let row: Option<PlacedRow> = on_tx!(self, c => bind_booking_row!(sqlx::query_as(&sql), b, &passengers, seats)
            .bind(key).fetch_optional(c).await)?;
        Ok(match row {
            Some(PlacedRow {
                booking,
                seated: true,
            }) => PlaceBooking::Held(Box::new(booking.try_into()?)),
            Some(PlacedRow { booking, .. }) => PlaceBooking::SoldOut(Box::new(booking.try_into()?)),
            None => match self.insert_conflict(b).await? {
                InsertBooking::Duplicate(existing) => PlaceBooking::Duplicate(existing),
                // `insert_conflict` never answers `Inserted`; a new reference is the harmless reading.
                InsertBooking::ReferenceTaken | InsertBooking::Inserted(_) => {
                    PlaceBooking::ReferenceTaken
                }
            },
        })
    }

    async fn place_step_by_step(
        &mut self,
        b: &NewBookingRow,
        key: &IdempotencyKey,
    ) -> Result<PlaceBooking> {
        let booking = match self.insert_booking(b).await? {
            InsertBooking::Inserted(booking) => booking,
            InsertBooking::Duplicate(existing) => return Ok(PlaceBooking::Duplicate(existing)),
            InsertBooking::ReferenceTaken => return Ok(PlaceBooking::ReferenceTaken),
        };
        if !self
            .take_seats(b.tenant_id, b.flight_id, booking.seats)
            .await?
        {
            return Ok(PlaceBooking::SoldOut(booking));
        }
        self.attach_booking_to_key(b.tenant_id, key, booking.id)
            .await?;
        Ok(PlaceBooking::Held(booking))
    }
}

/// [`Tx::place_booking`]'s one statement on PostgreSQL: the row's fifteen parameters, then the key as `$16`.
pub(crate) fn place_statement() -> String {
    format!(
        "WITH placed AS ({INSERT_BOOKING} RETURNING {BOOKING_COLUMNS}),
         seated AS (UPDATE flights SET seats_sold = seats_sold + $7
             WHERE tenant_id = $2 AND id = $4 AND seats_sold + $7 <= capacity
               AND EXISTS (SELECT 1 FROM placed) RETURNING id),
         attached AS (UPDATE idempotency_keys SET booking_id = $1
             WHERE tenant_id = $2 AND key = $16 AND EXISTS (SELECT 1 FROM seated))
         SELECT placed.*, EXISTS (SELECT 1 FROM seated) AS seated FROM placed"
    )
}
