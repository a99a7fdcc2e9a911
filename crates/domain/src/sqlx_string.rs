//! Storage support for string newtypes: stored as TEXT, and *parsed* again when read, so a value that a
//! bad migration or a manual edit put in the database cannot become a domain value without passing its rules.

/// Implements `sqlx::Type`, `Encode` and `Decode` for a newtype over `String` with a `parse` constructor (or,
/// as a second argument, the constructor that reads stored values: a type whose rules grew stricter reads rows
/// written under the older ones with that, rather than failing every query that meets one).
#[macro_export]
macro_rules! sqlx_string_newtype {
    ($ty:ty) => {
        $crate::sqlx_string_newtype!($ty, parse);
    };
    ($ty:ty, $read:ident) => {
        impl<DB: ::sqlx::Database> ::sqlx::Type<DB> for $ty
        where
            String: ::sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <String as ::sqlx::Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <String as ::sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: ::sqlx::Database> ::sqlx::Encode<'q, DB> for $ty
        where
            String: ::sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as ::sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<::sqlx::encode::IsNull, ::sqlx::error::BoxDynError> {
                <String as ::sqlx::Encode<'q, DB>>::encode(self.as_str().to_owned(), buf)
            }
        }

        impl<'r, DB: ::sqlx::Database> ::sqlx::Decode<'r, DB> for $ty
        where
            String: ::sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as ::sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, ::sqlx::error::BoxDynError> {
                let raw = <String as ::sqlx::Decode<'r, DB>>::decode(value)?;
                <$ty>::$read(&raw).map_err(|e| e.to_string().into())
            }
        }
    };
}
