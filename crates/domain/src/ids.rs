//! Typed ids. A `BookingId` cannot be passed where a `FlightId` is expected; all are UUIDs (v7, so they sort by
//! creation time and index well).

use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, sqlx::Type)]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// A tenant (airline or agency) of the platform.
    TenantId
);
uuid_id!(
    /// One run of the partner-data importer.
    ImportRunId
);
uuid_id!(
    /// A scheduled flight of one tenant.
    FlightId
);
uuid_id!(
    /// A booking. Also the payment provider's idempotency key for its charge.
    BookingId
);
uuid_id!(
    /// A row in the email outbox.
    OutboxId
);
uuid_id!(
    /// A background job in the durable queue.
    JobId
);
uuid_id!(
    /// A finding raised for the operators (by the sentinel or crash capture).
    AlertId
);
uuid_id!(
    /// One captured crash (a panic), filed under its group's fingerprint.
    CrashId
);
uuid_id!(
    /// A tenant operator's admin token (its row; the token itself is never stored).
    OperatorTokenId
);
