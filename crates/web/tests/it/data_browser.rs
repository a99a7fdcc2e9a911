//! The data browser over a feed declared with a column of every type, loaded by the importer for two tenants:
//! each column sorts (rows without a value last), pages by keyset without losing or repeating a row, filters by
//! its type, exports every matching row as CSV; every bad parameter is named; a tenant operator reads its own
//! rows only. Each answer is checked against the same rows kept in the test.

use std::cmp::Ordering;
use std::sync::Arc;

use axum::http::StatusCode;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use skybook_domain::OperatorToken;
use skybook_import::{FeedType, ImportRequest, Limits, Source};
use skybook_storage::{Engine, Tenant};
use skybook_testkit::{backend_tests, fixtures};

use crate::crashes::admin_get;
use crate::harness::{TestApp, ADMIN_TOKEN};
use crate::visitor::Visitor;

const FARES: &str = r#"
name = "fares"
key = ["code"]

[[columns]]
name = "code"
type = "text"
required = true

[[columns]]
name = "cabin"
type = "enum"
values = ["economy", "business"]
required = true

[[columns]]
name = "seats"
type = "integer"

[[columns]]
name = "price"
type = "decimal"

[[columns]]
name = "refundable"
type = "boolean"

[[columns]]
name = "valid_from"
type = "date"

[[columns]]
name = "departs_at"
type = "timestamp"

[[columns]]
name = "note"
type = "text"
"#;

/// A row as the test keeps it.
#[derive(Debug, Clone)]
struct Fare {
    tenant: &'static str,
    code: String,
    cabin: &'static str,
    seats: Option<i64>,
    price: Option<String>,
    refundable: bool,
    valid_from: NaiveDate,
    departs_at: Option<DateTime<Utc>>,
    note: Option<String>,
}

fn fares(tenant: &'static str, prefix: char, n: usize) -> Vec<Fare> {
    let day = NaiveDate::from_ymd_opt(2027, 1, 1).unwrap();
    let start = Utc.with_ymd_and_hms(2027, 2, 1, 0, 0, 0).unwrap();
    (0..n)
        .map(|i| Fare {
            tenant,
            code: format!("{prefix}{i:03}"),
            cabin: if i % 3 == 0 { "business" } else { "economy" },
            seats: (i % 7 != 0).then_some(((i * 13) % 50) as i64),
            // Prices whose order as text is not their order as numbers (9.5 < 10.25).
            price: (i % 5 != 0).then(|| format!("{}.{:02}", (i * 37) % 200, i % 100)),
            refundable: i % 2 == 0,
            valid_from: day + Duration::days((i % 20) as i64),
            departs_at: (i % 4 != 0).then(|| start + Duration::minutes(i as i64 * 90)),
            note: (i % 6 == 0).then(|| "Special offer".to_owned()),
        })
        .collect()
}

async fn import(
    app: &TestApp,
    feed: &FeedType,
    tenant: &Tenant,
    rows: &[Fare],
    dir: &std::path::Path,
) {
    let path = dir.join(format!("{}.csv", tenant.slug));
    let mut csv = String::from("code,cabin,seats,price,refundable,valid_from,departs_at,note\n");
    for f in rows {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            f.code,
            f.cabin,
            f.seats.map(|s| s.to_string()).unwrap_or_default(),
            f.price.clone().unwrap_or_default(),
            f.refundable,
            f.valid_from,
            f.departs_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            f.note.clone().unwrap_or_default(),
        ));
    }
    std::fs::write(&path, csv).unwrap();
    let limits = Limits::default();
    let request = ImportRequest {
        run: skybook_domain::ImportRunId::new(),
        tenant,
        feed,
        source: Arc::new(Source::from_file(&path, None, limits).unwrap()),
        label: "test".into(),
        feed_date: None,
        dry_run: false,
        limits,
    };
    let summary = skybook_import::run_import(&app.store, request, &|_, _| {})
        .await
        .unwrap();
    assert_eq!(
        (summary.status, summary.counts.rejected),
        ("succeeded", 0),
        "{summary:?}"
    );
}

/// Follows `next` from `path` to the end; returns the codes in the order given.
async fn all_pages(app: &TestApp, path: &str, token: &str) -> Vec<String> {
    let mut codes = Vec::new();
    let mut url = path.to_owned();
    for _ in 0..100 {
        let (status, body) = admin_get(app, &url, Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{url}: {body}");
        codes.extend(
            body["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["code"].as_str().unwrap().to_owned()),
        );
        match body["next"].as_str() {
            None => return codes,
            Some(next) => {
                let sep = if path.contains('?') { "&" } else { "?" };
                url = format!(
                    "{path}{sep}{}",
                    serde_urlencoded::to_string([("after", next)]).unwrap()
                );
            }
        }
    }
    panic!("more than 100 pages")
}

/// `rows` ordered by `key` (rows without a value last, whichever the direction), then by tenant and code.
fn sorted<K: PartialOrd>(
    rows: &[Fare],
    descending: bool,
    key: impl Fn(&Fare) -> Option<K>,
) -> Vec<String> {
    let mut rows = rows.to_vec();
    rows.sort_by(|a, b| {
        let by_value = match (key(a), key(b)) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => {
                let o = x.partial_cmp(&y).unwrap();
                if descending {
                    o.reverse()
                } else {
                    o
                }
            }
        };
        by_value
            .then(a.tenant.cmp(b.tenant))
            .then(a.code.cmp(&b.code))
    });
    rows.into_iter().map(|f| f.code).collect()
}

async fn the_data_browser_sorts_pages_filters_and_exports_by_column_type(engine: Engine) {
    let feed = skybook_import::declaration::parse("fares.toml", FARES).unwrap();
    let app = TestApp::start(engine, "data_browser", 5)
        .await
        .with_feeds(vec![feed.clone()]);
    let (sea, _) = fixtures::tenant_with_flight(&app.store, "sea", 5).await;
    assert!(
        app.tenant.id < sea.id,
        "air's id sorts first (ids are time-ordered)"
    );
    let dir = tempfile::tempdir().unwrap();
    let air_rows = fares("air", 'A', 60);
    let sea_rows = fares("sea", 'S', 5);
    import(&app, &feed, &app.tenant, &air_rows, dir.path()).await;
    import(&app, &feed, &sea, &sea_rows, dir.path()).await;
    let everything: Vec<Fare> = air_rows.iter().chain(&sea_rows).cloned().collect();

    // Key order, across tenants; then every type of column, both ways, in pages of 7.
    let base = "/admin/api/data/fares?limit=7";
    assert_eq!(
        all_pages(&app, base, ADMIN_TOKEN).await,
        sorted(&everything, false, |_| Some(0))
    );
    let price = |f: &Fare| f.price.as_ref().map(|p| p.parse::<f64>().unwrap());
    for (column, descending) in [
        ("price", true),
        ("price", false),
        ("departs_at", false),
        ("seats", true),
        ("valid_from", true),
        ("note", false),
        ("refundable", true),
        ("cabin", false),
    ] {
        let dir = if descending { "desc" } else { "asc" };
        let got = all_pages(
            &app,
            &format!("{base}&sort={column}&dir={dir}"),
            ADMIN_TOKEN,
        )
        .await;
        let want = match column {
            "price" => sorted(&everything, descending, price),
            "departs_at" => sorted(&everything, descending, |f| f.departs_at),
            "seats" => sorted(&everything, descending, |f| f.seats),
            "valid_from" => sorted(&everything, descending, |f| Some(f.valid_from)),
            "note" => sorted(&everything, descending, |f| f.note.clone()),
            "refundable" => sorted(&everything, descending, |f| Some(f.refundable)),
            _ => sorted(&everything, descending, |f| Some(f.cabin)),
        };
        assert_eq!(got, want, "sorted by {column} {dir}");
    }

    // A filter on every type at once.
    let query = "tenant=air&cabin=business&seats.min=5&seats.max=45&price.min=20.5&valid_from.max=2027-01-18\
                 &departs_at.max=2027-02-04&note=SPECIAL";
    let got = all_pages(
        &app,
        &format!("/admin/api/data/fares?{query}&limit=3"),
        ADMIN_TOKEN,
    )
    .await;
    let until = Utc.with_ymd_and_hms(2027, 2, 5, 0, 0, 0).unwrap();
    let matching: Vec<Fare> = air_rows
        .iter()
        .filter(|f| f.cabin == "business")
        .filter(|f| f.seats.is_some_and(|s| (5..=45).contains(&s)))
        .filter(|f| price(f).is_some_and(|p| p >= 20.5))
        .filter(|f| f.valid_from <= NaiveDate::from_ymd_opt(2027, 1, 18).unwrap())
        .filter(|f| f.departs_at.is_some_and(|t| t < until))
        .filter(|f| {
            f.note
                .as_deref()
                .is_some_and(|n| n.to_lowercase().contains("special"))
        })
        .cloned()
        .collect();
    assert!(!matching.is_empty(), "the filter matches some rows");
    assert_eq!(got, sorted(&matching, false, |_| Some(0)));
    let (_, exact) = admin_get(
        &app,
        "/admin/api/data/fares?code.eq=A012&refundable=true",
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(exact["rows"].as_array().unwrap().len(), 1, "{exact}");
    assert_eq!(exact["rows"][0]["price"], "44.12");
    assert_eq!(exact["rows"][0]["seats"], 6);
    assert_eq!(exact["rows"][0]["tenant"], "air");

    // Every bad parameter, named.
    let (status, body) = admin_get(
        &app,
        "/admin/api/data/fares?bogus=1&seats.min=many&sort=nope&dir=up&cabin=first&after=zzz&refundable.min=1",
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    for field in [
        "bogus",
        "seats.min",
        "sort",
        "dir",
        "cabin",
        "after",
        "refundable.min",
    ] {
        assert!(body["fields"][field].is_array(), "{field} named in {body}");
    }
    assert_eq!(
        admin_get(&app, "/admin/api/data/nope", Some(ADMIN_TOKEN))
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // The export: every matching row of every tenant, in the page's order, whatever the limit.
    let (status, headers, csv) = app
        .request(
            axum::http::Request::get(
                "/admin/data/fares/export.csv?cabin=economy&sort=price&dir=desc&limit=2",
            )
            .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
            .body(axum::body::Body::empty())
            .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "tenant",
            "code",
            "cabin",
            "seats",
            "price",
            "refundable",
            "valid_from",
            "departs_at",
            "note"
        ]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let economy: Vec<Fare> = everything
        .iter()
        .filter(|f| f.cabin == "economy")
        .cloned()
        .collect();
    assert_eq!(
        records.iter().map(|r| r[1].to_owned()).collect::<Vec<_>>(),
        sorted(&economy, true, price)
    );
    let a001 = records.iter().find(|r| &r[1] == "A001").unwrap();
    assert_eq!(
        a001.iter().collect::<Vec<_>>(),
        [
            "air",
            "A001",
            "economy",
            "13",
            "37.01",
            "false",
            "2027-01-02",
            "2027-02-01T01:30:00Z",
            ""
        ]
    );

    // A tenant operator reads its own rows, and no other tenant's even when it asks.
    let token = OperatorToken::generate();
    app.store
        .create_operator_token(app.tenant.id, &token.hash(), true, Utc::now())
        .await
        .unwrap();
    let own = all_pages(&app, "/admin/api/data/fares?limit=25", token.expose()).await;
    assert_eq!(own, sorted(&air_rows, false, |_| Some(0)));
    let (status, body) = admin_get(
        &app,
        "/admin/api/data/fares?tenant=sea",
        Some(token.expose()),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["fields"]["tenant"][0], "no tenant sea", "{body}");
    // Nor by the export, which streams every matching row: its own tenant's, by default.
    let (status, _, csv) = app
        .request(
            axum::http::Request::get("/admin/data/fares/export.csv")
                .header("authorization", format!("Bearer {}", token.expose()))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(csv.lines().count(), 1 + air_rows.len(), "air's rows only");
    assert!(!csv.contains("\nsea,"), "none of sea's");

    // The page, without JavaScript: the rows as the API has them, and the next page's link.
    let mut visitor = Visitor::new(app.router.clone());
    visitor.sign_in_admin(ADMIN_TOKEN).await;
    let page = visitor
        .get("/admin/data/fares?sort=seats&dir=desc&limit=5")
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let (_, api) = admin_get(
        &app,
        "/admin/api/data/fares?sort=seats&dir=desc&limit=10",
        Some(ADMIN_TOKEN),
    )
    .await;
    let codes: Vec<&str> = api["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    let at = |html: &str, code: &str| {
        html.find(&format!("<td>{code}</td>"))
            .unwrap_or_else(|| panic!("{code} in {html}"))
    };
    assert!(at(page.main(), codes[0]) < at(page.main(), codes[4]));
    let next = page.html.split("href=\"").find_map(|rest| {
        let link = rest.split('"').next()?;
        link.contains("after=")
            .then(|| link.replace("&amp;", "&").replace("&#38;", "&"))
    });
    let next = visitor.get(&next.expect("a next page link")).await;
    for code in &codes[5..10] {
        at(next.main(), code);
    }
    assert!(!next.main().contains(&format!("<td>{}</td>", codes[0])));
}

backend_tests!(the_data_browser_sorts_pages_filters_and_exports_by_column_type);
