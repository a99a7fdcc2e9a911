//! A partner file uploaded from the admin (`POST /admin/api/imports`, multipart): imported through the same
//! pipeline as a fetched feed, watched at `GET /admin/api/imports/{run}`; every bad field named; a dry run that
//! writes nothing; and, signed in by session, the form's CSRF token required.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use skybook_storage::{Engine, ImportRunFilter};
use skybook_testkit::backend_tests;

use crate::crashes::admin_get;
use crate::harness::{TestApp, ADMIN_TOKEN};
use crate::visitor::Visitor;

const BOUNDARY: &str = "skybook-test-boundary-7MA4YWxkTrZu0gW";
const CONTENT_TYPE: &str = "multipart/form-data; boundary=skybook-test-boundary-7MA4YWxkTrZu0gW";

const AIRPORTS: &str = "iata,name,city,country,timezone\n\
    DUB,Dublin,Dublin,IE,Europe/Dublin\n\
    LHR,London Heathrow,London,GB,Europe/London\n\
    \"CDG\",\"Paris Charles de Gaulle\",Paris,FR,Europe/Paris\n";

/// A multipart body: `(name, filename, content)` parts in order.
fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, filename, content) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match filename {
            Some(file) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: text/csv\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn upload(
    app: &TestApp,
    token: Option<&str>,
    parts: &[(&str, Option<&str>, &[u8])],
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut request = Request::post("/admin/api/imports").header("content-type", CONTENT_TYPE);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let (status, headers, body) = app
        .request(request.body(Body::from(multipart(parts))).unwrap())
        .await;
    (
        status,
        headers,
        serde_json::from_str(&body).unwrap_or(Value::Null),
    )
}

/// Polls the run until it has ended (the import goes on after the `202`).
async fn ended(app: &TestApp, link: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = admin_get(app, link, Some(ADMIN_TOKEN)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["run"]["status"] != "running" {
            return body["run"].clone();
        }
        assert!(Instant::now() < deadline, "the run did not end: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn an_uploaded_file_goes_through_the_import_pipeline(engine: Engine) {
    let app = TestApp::start(engine, "import_upload", 5).await;
    let file = ("file", Some("airports.csv"), AIRPORTS.as_bytes());
    let form = [
        ("tenant", None, &b"air"[..]),
        ("feed", None, b"airports"),
        file,
    ];
    let (status, _, _) = upload(&app, None, &form).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, headers, body) = upload(&app, Some(ADMIN_TOKEN), &form).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let link = headers["location"].to_str().unwrap().to_owned();
    assert_eq!(
        link,
        format!("/admin/api/imports/{}", body["run"].as_str().unwrap())
    );
    assert_eq!(body["links"]["run"], link.as_str());
    let run = ended(&app, &link).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["tenant"], "air");
    assert_eq!(run["source"], "upload: airports.csv");
    assert_eq!(run["rows"]["read"], 3);
    assert_eq!(run["rows"]["inserted"], 3);
    assert_eq!(run["bytes"], AIRPORTS.len());

    // The same content again: skipped.
    let (status, headers, _) = upload(&app, Some(ADMIN_TOKEN), &form).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let again = ended(&app, headers["location"].to_str().unwrap()).await;
    assert_eq!(again["status"], "skipped", "{again}");

    // A row that breaks the declaration: the airports budget is zero, so the run fails and applies nothing.
    let bad = format!("{AIRPORTS}x1,Nowhere,,ES,\n");
    let form = [
        ("tenant", None, &b"air"[..]),
        ("feed", None, b"airports"),
        ("file", Some("airports.csv"), bad.as_bytes()),
    ];
    let (_, headers, _) = upload(&app, Some(ADMIN_TOKEN), &form).await;
    let link = headers["location"].to_str().unwrap().to_owned();
    let failed = ended(&app, &link).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let (_, rejects) = admin_get(&app, &format!("{link}/rejects"), Some(ADMIN_TOKEN)).await;
    assert_eq!(rejects["rejects"][0]["line"], 5, "{rejects}");
    assert_eq!(rejects["rejects"][0]["column"], "iata");
    assert_eq!(rejects["rejects"][0]["raw"], "x1,Nowhere,,ES,");

    // A dry run reports every reject and records nothing.
    let runs_before = runs(&app).await;
    let form = [
        ("tenant", None, &b"air"[..]),
        ("feed", None, b"airports"),
        ("dry_run", None, b"true"),
        ("file", Some("airports.csv"), bad.as_bytes()),
    ];
    let (status, _, report) = upload(&app, Some(ADMIN_TOKEN), &form).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["rows"]["read"], 4);
    assert_eq!(report["rows"]["rejected"], 1);
    assert_eq!(report["rejects"][0]["line"], 5);
    assert_eq!(runs(&app).await, runs_before, "a dry run records nothing");
}

async fn runs(app: &TestApp) -> usize {
    let filter = ImportRunFilter {
        tenant_id: Some(app.tenant.id),
        feed: None,
        status: None,
        limit: 100,
    };
    app.store.import_runs(&filter).await.unwrap().len()
}

async fn a_bad_upload_names_every_bad_field_and_records_nothing(engine: Engine) {
    let app = TestApp::start(engine, "import_upload_bad", 5).await;
    let token = Some(ADMIN_TOKEN);
    let (status, _, body) = upload(
        &app,
        token,
        &[
            ("tenant", None, b"nobody"),
            ("feed", None, b"hotels"),
            ("colour", None, b"blue"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    for field in ["tenant", "feed", "file", "colour"] {
        assert!(
            body["fields"][field].is_array(),
            "{field} not named: {body}"
        );
    }
    assert!(
        body["fields"]["feed"][0]
            .as_str()
            .unwrap()
            .contains("airports"),
        "{body}"
    );

    let long = "a".repeat(5000);
    let (status, _, body) = upload(&app, token, &[("tenant", None, long.as_bytes())]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["fields"]["tenant"][0]
            .as_str()
            .unwrap()
            .contains("longer than"),
        "{body}"
    );

    let many: Vec<(&str, Option<&str>, &[u8])> =
        (0..100).map(|_| ("tenant", None, &b"air"[..])).collect();
    let (status, _, body) = upload(&app, token, &many).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["fields"]["body"][0]
            .as_str()
            .unwrap()
            .contains("more than 16 fields"),
        "{body}"
    );

    // Files the pipeline cannot read: named as `file`, before anything is recorded.
    let not_a_zip = b"PK\x03\x04 this is no zip at all";
    for (name, content) in [
        ("feed.zip", &not_a_zip[..]),
        ("empty.csv", b""),
        ("envelope.json", b"{\"data\": \"#!%\"}"),
    ] {
        let form = [
            ("tenant", None, &b"air"[..]),
            ("feed", None, b"airports"),
            ("file", Some(name), content),
        ];
        let (status, _, body) = upload(&app, token, &form).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}");
        assert!(body["fields"]["file"].is_array(), "{name}: {body}");
    }

    // Not multipart at all.
    let request = Request::post("/admin/api/imports")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .body(Body::from("{}"))
        .unwrap();
    let (status, _, body) = app.request(request).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("multipart/form-data"), "{body}");
    assert_eq!(runs(&app).await, 0, "nothing recorded");
}

async fn a_signed_in_upload_needs_the_forms_csrf_token(engine: Engine) {
    let app = TestApp::start(engine, "import_upload_csrf", 5).await;
    let mut visitor = Visitor::new(app.router.clone());
    let csrf = visitor.sign_in_admin(ADMIN_TOKEN).await;

    let without = multipart(&[
        ("tenant", None, b"air"),
        ("feed", None, b"airports"),
        ("file", Some("airports.csv"), AIRPORTS.as_bytes()),
    ]);
    let forged = visitor
        .post_body("/admin/api/imports", CONTENT_TYPE, without)
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.html);
    assert_eq!(runs(&app).await, 0);

    let with = multipart(&[
        ("csrf", None, csrf.as_bytes()),
        ("tenant", None, b"air"),
        ("feed", None, b"airports"),
        ("file", Some("airports.csv"), AIRPORTS.as_bytes()),
    ]);
    let accepted = visitor
        .post_body("/admin/api/imports", CONTENT_TYPE, with)
        .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.html);
    let run = ended(&app, accepted.location.as_deref().unwrap()).await;
    assert_eq!(run["status"], "succeeded", "{run}");
}

/// A partner file is far larger than any other request body may be: the upload streams past that limit.
async fn a_file_larger_than_a_request_body_uploads(engine: Engine) {
    let app = TestApp::start(engine, "import_upload_large", 5).await;
    let mut csv = String::from("iata,name,city,country,timezone\n");
    let letters = |n: usize| -> String {
        [n / 676, n / 26 % 26, n % 26]
            .iter()
            .map(|&i| (b'A' + i as u8) as char)
            .collect()
    };
    for n in 0..8_000 {
        csv.push_str(&format!(
            "{},Airport number {n},Some city,ES,Europe/Madrid\n",
            letters(n)
        ));
    }
    assert!(
        csv.len() > 4 * skybook_web::hardening::MAX_BODY_BYTES,
        "{}",
        csv.len()
    );
    let form = [
        ("tenant", None, &b"air"[..]),
        ("feed", None, b"airports"),
        ("file", Some("airports.csv"), csv.as_bytes()),
    ];
    let (status, headers, body) = upload(&app, Some(ADMIN_TOKEN), &form).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let run = ended(&app, headers["location"].to_str().unwrap()).await;
    assert_eq!(
        (run["status"].as_str(), run["rows"]["inserted"].as_u64()),
        (Some("succeeded"), Some(8_000)),
        "{run}"
    );
}

backend_tests!(
    a_file_larger_than_a_request_body_uploads,
    an_uploaded_file_goes_through_the_import_pipeline,
    a_bad_upload_names_every_bad_field_and_records_nothing,
    a_signed_in_upload_needs_the_forms_csrf_token,
);
