//! What every route answers, whatever it is asked: the security headers, and errors in one JSON shape.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::Value;
use skybook_storage::Engine;
use skybook_testkit::backend_tests;

use crate::harness::TestApp;

/// Each route of the router (its own list, not one of ours), by GET and by POST: every answer carries the
/// security headers.
async fn every_route_carries_the_security_headers(engine: Engine) {
    let app = TestApp::start(engine, "headers", 5).await;
    let paths = app.route_paths();
    assert!(paths.len() >= 15, "{paths:?}");
    for template in &paths {
        let path = template
            .replace("{tenant}", "air")
            .replace("{reference}", "ABC234")
            .replace("{flight}", &app.flight.id.to_string())
            .replace("{key}", "site-0123456789abcdef0123456789abcdef");
        for method in [Method::GET, Method::POST] {
            let request = Request::builder()
                .method(method.clone())
                .uri(&path)
                .header("accept", "text/html")
                .body(Body::empty())
                .unwrap();
            let (status, headers, _) = app.request(request).await;
            let header = |name: &str| {
                headers
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_else(|| panic!("{method} {path} ({status}) has no {name}"))
            };
            let csp = header("content-security-policy");
            assert!(
                csp.contains("frame-ancestors 'none'"),
                "{method} {path}: {csp}"
            );
            assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
            assert_eq!(header("x-content-type-options"), "nosniff");
            assert_eq!(header("x-frame-options"), "DENY");
            assert_eq!(header("referrer-policy"), "no-referrer");
            let cache = header("cache-control");
            if !path.starts_with("/static/") {
                assert_eq!(cache, "no-store", "{method} {path}");
            }
            // Cookies are Secure by default, so HTTPS is all this deployment speaks.
            assert!(header("strict-transport-security").contains("max-age="));
        }
    }
}

async fn framework_errors_answer_in_the_api_shape(engine: Engine) {
    let app = TestApp::start(engine, "error_shape", 5).await;
    let json = |body: &str| serde_json::from_str::<Value>(body).unwrap_or(Value::Null);
    // 405: routes that exist, with a method they do not take (and one nobody has heard of).
    for path in ["/api/v1/tenants/air/flights", "/ready", "/find"] {
        for method in ["DELETE", "BREW"] {
            let request = Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap();
            let (status, _, body) = app.request(request).await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_eq!(json(&body)["error"], "method_not_allowed", "{body}");
        }
    }
    // 413: a body over the limit.
    let big = "x".repeat(skybook_web::hardening::MAX_BODY_BYTES + 1);
    let request = Request::post("/api/v1/tenants/air/bookings")
        .header("content-type", "application/json")
        .header("idempotency-key", "big-body-key-000001")
        .body(Body::from(big))
        .unwrap();
    let (status, _, body) = app.request(request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json(&body)["error"], "payload_too_large", "{body}");

    // An invented method is counted as `other`, not as a label of its own.
    let (_, _, metrics) = app
        .request(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert!(!metrics.contains("BREW"), "raw methods never become labels");
}

backend_tests!(
    every_route_carries_the_security_headers,
    framework_errors_answer_in_the_api_shape,
);
