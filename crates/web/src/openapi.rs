//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::OpenApi;

use crate::api::{bookings, flights};
use crate::render;
use crate::site::{
    admin, admin_bookings, admin_cron, admin_data, admin_imports, admin_jobs, admin_upload,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "skybook", description = "Flight booking API. A customer is never billed twice."),
    paths(
        flights::search, bookings::create, bookings::show,
        admin::crashes_api, admin::alerts_api, admin::audit_api,
        admin_jobs::jobs_api, admin_jobs::job_api, admin_jobs::job_action_api, admin_jobs::queue_action_api,
        admin_cron::cron_api, admin_cron::cron_action_api,
        admin_imports::imports_api, admin_upload::upload, admin_imports::import_run_api, admin_imports::import_rejects_api,
        admin_data::data_api, admin_bookings::booking_api,
    ),
    modifiers(&AdminToken),
    components(schemas(
        render::FlightsJson, render::FlightJson, render::MoneyJson, render::BookingEnvelope, render::BookingJson,
        render::BookedFlightJson, render::PassengerJson, render::CardSummaryJson, render::ErrorJson,
        render::ExistingBookingJson,
        bookings::BookingRequestJson, bookings::PassengerRequestJson, bookings::CardRequestJson,
        admin_upload::UploadForm
    )),
    tags((name = "flights"), (name = "bookings"),
        (name = "admin", description = "The operators' API: the platform admin's token (`SKYBOOK_ADMIN_TOKEN`) or a tenant operator's (`skybook admin token create`), as a bearer token. A tenant operator sees its own tenant's jobs, runs, rows and bookings only."))
)]
pub struct ApiDoc;

/// What every admin operation may answer besides its own: one list, so each operation names only its own
/// outcomes.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub(crate) enum AdminErrors {
    /// `unauthorized`: no admin or operator token.
    #[response(status = 401)]
    Unauthorized(render::ErrorJson),
    /// `invalid`: every bad parameter named (a repeated one, or one holding a NUL character, too).
    #[response(status = 422)]
    Invalid(render::ErrorJson),
    /// `too_many_requests`: too many wrong tokens from this client; see Retry-After.
    #[response(status = 429)]
    TooManyRequests(render::ErrorJson),
    /// `service_unavailable`: the database is unavailable; retry.
    #[response(status = 503)]
    Unavailable(render::ErrorJson),
}

/// The admin API's bearer token, as a security scheme its operations name.
struct AdminToken;

impl utoipa::Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

pub async fn openapi_json() -> Json<serde_json::Value> {
    static DOCUMENT: std::sync::LazyLock<serde_json::Value> = std::sync::LazyLock::new(document);
    Json(DOCUMENT.clone())
}

/// The document as served: utoipa's, with its link objects' field names as OpenAPI spells them.
///
/// utoipa 5.5 serialises a `Link`'s fields in snake case (`operation_id`, `request_body`), which no OpenAPI
/// tool reads: a fuzzer's stateful phase then finds links "missing both operationRef and operationId".
pub fn document() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serialises");
    let responses = doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|operations| operations.values_mut())
        .filter_map(|operation| operation.get_mut("responses")?.as_object_mut())
        .flat_map(|responses| responses.values_mut());
    for response in responses {
        let Some(links) = response.get_mut("links").and_then(|l| l.as_object_mut()) else {
            continue;
        };
        for link in links
            .values_mut()
            .filter_map(serde_json::Value::as_object_mut)
        {
            for (snake, camel) in [
                ("operation_id", "operationId"),
                ("operation_ref", "operationRef"),
                ("request_body", "requestBody"),
            ] {
                if let Some(value) = link.remove(snake) {
                    link.insert(camel.to_owned(), value);
                }
            }
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    /// A created booking links to its read, in OpenAPI's own spelling, so stateful testers follow it.
    #[test]
    fn a_created_booking_links_to_its_read() {
        let doc = super::document();
        let post = &doc["paths"]["/api/v1/tenants/{tenant}/bookings"]["post"];
        for status in ["201", "202"] {
            let link = &post["responses"][status]["links"]["ShowBooking"];
            assert_eq!(link["operationId"], "show_booking", "{link}");
            assert_eq!(
                link["parameters"]["path.reference"],
                "$response.body#/booking/reference"
            );
            assert!(link.get("operation_id").is_none(), "{link}");
        }
        let get = &doc["paths"]["/api/v1/tenants/{tenant}/bookings/{reference}"]["get"];
        assert_eq!(get["operationId"], "show_booking");
        // The key's rules are in the document, not only in prose.
        let key = post["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "Idempotency-Key")
            .unwrap();
        assert_eq!(key["schema"]["minLength"], 16, "{key}");
        assert_eq!(key["schema"]["maxLength"], 255, "{key}");
    }

    /// Every admin operation is in the document, behind the bearer token, with the answers every one may give.
    #[test]
    fn every_admin_operation_names_the_token_and_its_refusals() {
        let doc = super::document();
        let scheme = &doc["components"]["securitySchemes"]["admin_token"];
        assert_eq!(scheme["scheme"], "bearer", "{scheme}");
        let mut operations = 0;
        for (path, methods) in doc["paths"].as_object().unwrap() {
            if !path.starts_with("/admin") {
                continue;
            }
            for (method, operation) in methods.as_object().unwrap() {
                operations += 1;
                assert!(
                    operation["security"][0]["admin_token"].is_array(),
                    "{method} {path}"
                );
                for status in ["401", "429", "503"] {
                    assert!(
                        operation["responses"][status].is_object(),
                        "{method} {path}: no {status}"
                    );
                }
            }
        }
        assert_eq!(operations, 15, "every admin JSON operation");
    }
}
