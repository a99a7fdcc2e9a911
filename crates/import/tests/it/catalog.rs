//! The `flights` feed is the booking catalog: imported flights are the ones the store offers; a re-import
//! updates schedule, fare and capacity, but a row that would leave fewer seats than are sold is rejected with
//! that reason while the rest of the file applies. Declared `replace`, the catalog loses the flights a new file
//! lacks — except those with seats sold, which stay.

use chrono::NaiveDate;
use skybook_storage::{Engine, FlightSearch};
use skybook_testkit::backend_tests;

use crate::harness::{built_in, feed, flights_csv, Importer};

async fn imported_flights_are_bookable_and_keep_their_sold_seats(engine: Engine) {
    let importer = Importer::start(engine, "import_catalog").await;
    let flights = built_in("flights");
    let first = importer.file("first.csv", flights_csv(200).as_bytes());
    assert_eq!(importer.run(&flights, &first).await.status, "succeeded");
    let search = |date: NaiveDate| FlightSearch {
        date: Some(date),
        limit: 100,
        ..FlightSearch::default()
    };
    let day = NaiveDate::from_ymd_opt(2027, 1, 1).unwrap();
    let offered = importer
        .store
        .search_flights(importer.tenant.id, &search(day))
        .await
        .unwrap();
    let numbers: Vec<&str> = offered.iter().map(|f| f.number.as_str()).collect();
    assert_eq!(
        numbers,
        ["AI100", "AI128", "AI156", "AI184", "AI212", "AI240", "AI268", "AI296"],
        "the imported flights of 1 January"
    );
    assert_eq!(
        (offered[0].capacity, offered[0].fare.amount_minor),
        (180, 4999)
    );

    // AI100 has 5 seats sold; the next file gives it 3 seats (refused) and everyone a new fare.
    let sold = format!(
        "UPDATE flights SET seats_sold = 5 WHERE number = 'AI100' AND tenant_id = {}",
        match engine {
            Engine::Postgres => format!("'{}'", importer.tenant.id),
            Engine::Sqlite => format!("X'{}'", importer.tenant.id.as_uuid().simple()),
        }
    );
    assert_eq!(
        skybook_testkit::execute_outside(&importer.url, &sold)
            .await
            .unwrap(),
        1
    );
    let next = flights_csv(200).replace(",180,", ",170,").replace(
        "AI100,DUB,LHR,2027-01-01T07:30:00Z,170,",
        "AI100,DUB,LHR,2027-01-01T07:30:00Z,3,",
    );
    let path = importer.file("next.csv", next.as_bytes());
    let summary = importer.run(&flights, &path).await;
    assert_eq!(
        summary.status, "succeeded",
        "one reject is within the budget: {summary:?}"
    );
    assert_eq!(
        (summary.counts.updated, summary.counts.rejected),
        (199, 1),
        "{summary:?}"
    );
    let rejects = importer.stored_rejects(&summary).await;
    assert_eq!(rejects[0].line, 2);
    assert_eq!(
        rejects[0].reason,
        "a capacity of 3 is below the 5 seats already sold on this flight"
    );
    assert_eq!(
        rejects[0].raw,
        "AI100,DUB,LHR,2027-01-01T07:30:00Z,3,4999,EUR"
    );
    let offered = importer
        .store
        .search_flights(importer.tenant.id, &search(day))
        .await
        .unwrap();
    assert_eq!(
        (
            offered[0].number.as_str(),
            offered[0].capacity,
            offered[0].seats_sold
        ),
        ("AI100", 180, 5),
        "unchanged"
    );
    assert_eq!(
        (offered[1].number.as_str(), offered[1].capacity),
        ("AI128", 170),
        "the rest applied"
    );
}

/// Sets the seats sold of the tenant's flight `number`, outside the store (as bookings would have).
async fn sell(importer: &Importer, engine: Engine, number: &str, seats: u32) {
    let sql = format!(
        "UPDATE flights SET seats_sold = {seats} WHERE number = '{number}' AND tenant_id = {}",
        match engine {
            Engine::Postgres => format!("'{}'", importer.tenant.id),
            Engine::Sqlite => format!("X'{}'", importer.tenant.id.as_uuid().simple()),
        }
    );
    let changed = skybook_testkit::execute_outside(&importer.url, &sql)
        .await
        .unwrap();
    assert_eq!(changed, 1, "{sql}");
}

async fn a_replace_mode_catalog_removes_unsold_flights_the_file_lacks(engine: Engine) {
    let importer = Importer::start(engine, "import_catalog_replace").await;
    let toml = skybook_import::declaration::BUILT_IN
        .iter()
        .find(|(file, _)| *file == "flights.toml")
        .unwrap()
        .1
        .replace("mode = \"upsert\"", "mode = \"replace\"");
    assert!(toml.contains("mode = \"replace\""));
    let flights = feed(&toml);
    let first = importer.file("first.csv", flights_csv(3).as_bytes());
    assert_eq!(importer.run(&flights, &first).await.status, "succeeded");
    sell(&importer, engine, "AI101", 2).await;

    // The next file has AI100 only: AI102 (unsold) goes, AI101 (two seats sold) stays.
    let next = importer.file("next.csv", flights_csv(1).as_bytes());
    let summary = importer.run(&flights, &next).await;
    assert_eq!(summary.status, "succeeded", "{summary:?}");
    assert_eq!(
        summary.counts.deleted, 2,
        "the feed's table mirrors the file"
    );
    let offered = importer
        .store
        .search_flights(
            importer.tenant.id,
            &FlightSearch {
                limit: 100,
                ..FlightSearch::default()
            },
        )
        .await
        .unwrap();
    let numbers: Vec<&str> = offered.iter().map(|f| f.number.as_str()).collect();
    assert_eq!(
        numbers,
        ["AI100", "AI101"],
        "AI102 removed, AI101 kept for its bookings"
    );
}

backend_tests!(
    imported_flights_are_bookable_and_keep_their_sold_seats,
    a_replace_mode_catalog_removes_unsold_flights_the_file_lacks,
);
