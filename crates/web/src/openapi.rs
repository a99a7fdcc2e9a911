//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::OpenApi;

use crate::api::{bookings, flights};
use crate::render;

#[derive(OpenApi)]
#[openapi(
    info(title = "skybook", description = "Flight booking API. A customer is never billed twice."),
    paths(flights::search, bookings::create, bookings::show),
    components(schemas(
        render::FlightsJson, render::FlightJson, render::MoneyJson, render::BookingEnvelope, render::BookingJson,
        render::BookedFlightJson, render::PassengerJson, render::CardSummaryJson,
        bookings::BookingRequestJson, bookings::PassengerRequestJson, bookings::CardRequestJson
    )),
    tags((name = "flights"), (name = "bookings"))
)]
pub struct ApiDoc;

pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
