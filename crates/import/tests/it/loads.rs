//! Good files in every form load whole; the same content again is skipped; replace mode removes exactly the
//! rows a new file lacks; a file over its reject budget applies nothing; a tenant's first load, which goes
//! straight into the feed's table, still names a repeated key's first line, and later loads merge with it.

use skybook_storage::Engine;
use skybook_testkit::backend_tests;

use crate::harness::{built_in, envelope, feed, flights_csv, zip, Importer, AIRPORTS_CSV};

async fn a_file_loads_in_every_form_and_the_same_content_is_skipped(engine: Engine) {
    let importer = Importer::start(engine, "import_forms").await;
    let flights = built_in("flights");
    let csv = flights_csv(30);
    let plain = importer.file("flights.csv", csv.as_bytes());
    let summary = importer.run(&flights, &plain).await;
    assert_eq!(summary.status, "succeeded", "{summary:?}");
    assert_eq!(
        (
            summary.counts.read,
            summary.counts.inserted,
            summary.counts.rejected
        ),
        (30, 30, 0)
    );
    assert_eq!(importer.keys(&flights).await.len(), 30);

    // The same CSV, zipped, then in the envelope: the same content, so skipped, nothing touched.
    let zipped = importer.file("flights.zip", &zip(&[("flights.csv", csv.as_bytes())]));
    let enveloped = importer.file(
        "flights.json",
        &envelope(&zip(&[("flights.csv", csv.as_bytes())])),
    );
    for path in [&zipped, &enveloped] {
        let summary = importer.run(&flights, path).await;
        assert_eq!(summary.status, "skipped", "{path:?}: {summary:?}");
        assert_eq!(summary.counts.inserted + summary.counts.updated, 0);
    }

    // A new day's file through the envelope: one fare changed, two flights added.
    let mut next = csv.replace(",4999,EUR", ",5999,EUR");
    next.push_str("AI900,DUB,CDG,2027-02-01T09:00:00Z,150,7000,EUR\nAI901,CDG,DUB,2027-02-01T18:00:00Z,150,7000,EUR\n");
    let path = importer.file(
        "next.json",
        &envelope(&zip(&[("flights.csv", next.as_bytes())])),
    );
    let summary = importer.run(&flights, &path).await;
    assert_eq!(summary.status, "succeeded", "{summary:?}");
    assert_eq!(
        (
            summary.counts.inserted,
            summary.counts.updated,
            summary.counts.deleted
        ),
        (2, 1, 0)
    );
    assert_eq!(importer.keys(&flights).await.len(), 32);
}

async fn replace_mode_removes_exactly_the_rows_the_new_file_lacks(engine: Engine) {
    let importer = Importer::start(engine, "import_replace").await;
    let airports = built_in("airports");
    let first = importer.file("a.csv", AIRPORTS_CSV.as_bytes());
    assert_eq!(importer.run(&airports, &first).await.status, "succeeded");
    let next = AIRPORTS_CSV.replace("LHR,London Heathrow,London,GB,Europe/London\n", "")
        + "AMS,Amsterdam,Amsterdam,NL,Europe/Amsterdam\n";
    let path = importer.file("b.csv", next.as_bytes());
    let summary = importer.run(&airports, &path).await;
    assert_eq!(summary.status, "succeeded", "{summary:?}");
    assert_eq!(
        (
            summary.counts.inserted,
            summary.counts.updated,
            summary.counts.deleted
        ),
        (1, 0, 1)
    );
    assert_eq!(importer.keys(&airports).await, ["AMS", "CDG", "DUB"]);
}

async fn over_budget_applies_nothing_and_keeps_its_rejects_with_their_lines(engine: Engine) {
    let importer = Importer::start(engine, "import_budget").await;
    let airports = built_in("airports"); // at most 10 rejected rows, 5%
    let good = importer.file("good.csv", AIRPORTS_CSV.as_bytes());
    assert_eq!(importer.run(&airports, &good).await.status, "succeeded");

    // Line 2 holds a quoted name across two physical lines; the bad rows after it must keep their own lines.
    let mut csv = String::from(
        "iata,name,city,country,timezone\nMAD,\"Madrid\nBarajas\",Madrid,ES,Europe/Madrid\n",
    );
    for i in 0..12 {
        csv.push_str(&format!("X{i},Bad,Bad,ES,Europe/Madrid\n")); // lines 4..=15: not an IATA code
    }
    let path = importer.file("bad.csv", csv.as_bytes());
    let summary = importer.run(&airports, &path).await;
    assert_eq!(summary.status, "failed", "{summary:?}");
    assert!(
        summary.error.as_deref().unwrap().contains("budget"),
        "{summary:?}"
    );
    assert_eq!(
        importer.keys(&airports).await,
        ["CDG", "DUB", "LHR"],
        "nothing applied, nothing removed"
    );
    let rejects = importer.stored_rejects(&summary).await;
    assert!(rejects.len() >= 11, "{rejects:?}");
    assert_eq!(rejects[0].line, 4, "{:?}", rejects[0]);
    assert_eq!(rejects[0].column_name.as_deref(), Some("iata"));
    assert_eq!(rejects[0].value.as_deref(), Some("X0"));
    assert_eq!(rejects[0].raw, "X0,Bad,Bad,ES,Europe/Madrid");
    assert_eq!(rejects[1].line, 5);
}

async fn a_repeated_key_is_rejected_naming_the_first_line(engine: Engine) {
    let importer = Importer::start(engine, "import_duplicates").await;
    let flights = built_in("flights");
    // Line 202 repeats line 2's key (number and departure), with another fare.
    let csv = format!(
        "{}AI100,DUB,LHR,2027-01-01T07:30:00Z,180,1,EUR\n",
        flights_csv(200)
    );
    let path = importer.file("dup.csv", csv.as_bytes());
    let summary = importer.run(&flights, &path).await;
    assert_eq!(
        summary.status, "succeeded",
        "one reject is within the budget: {summary:?}"
    );
    assert_eq!((summary.counts.inserted, summary.counts.rejected), (200, 1));
    let rejects = importer.stored_rejects(&summary).await;
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].line, 202);
    assert!(
        rejects[0].reason.contains("repeats line 2"),
        "{:?}",
        rejects[0]
    );
    assert_eq!(
        rejects[0].raw,
        "AI100,DUB,LHR,2027-01-01T07:30:00Z,180,1,EUR"
    );
}

async fn a_dry_run_reports_every_reject_and_writes_nothing(engine: Engine) {
    let importer = Importer::start(engine, "import_dry_run").await;
    let airports = built_in("airports");
    let csv = format!("{AIRPORTS_CSV}xx,No,No,IE,Europe/Dublin\nYYY,,No,IE,Europe/Dublin\n");
    let path = importer.file("dry.csv", csv.as_bytes());
    let summary = importer.run_with(&airports, &path, true).await;
    assert_eq!(summary.run, None);
    let lines: Vec<i64> = summary.rejects.iter().map(|r| r.line).collect();
    assert_eq!(lines, [5, 6], "{summary:?}");
    assert_eq!(summary.rejects[1].reason, "is required");
    assert!(importer
        .store
        .import_runs(&skybook_storage::ImportRunFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .is_empty());
}

const FARES: &str =
    "name = \"fares\"\nkey = [\"code\"]\n[budget]\nmax_rejected = 5\nmax_rejected_ratio = 0.5\n\
    [[columns]]\nname = \"code\"\ntype = \"text\"\nrequired = true\n\
    [[columns]]\nname = \"price\"\ntype = \"integer\"\n";

async fn a_first_load_goes_straight_in_and_still_names_a_repeated_key(engine: Engine) {
    let importer = Importer::start(engine, "import_first_load").await;
    let fares = feed(FARES);
    // Over budget on a first load: nothing stays.
    let bad = "code,price\nA,1\nB,x\nC,x\nD,x\nE,x\nF,x\nG,x\n";
    let summary = importer
        .run(&fares, &importer.file("bad.csv", bad.as_bytes()))
        .await;
    assert_eq!(summary.status, "failed", "{summary:?}");
    assert!(importer.keys(&fares).await.is_empty(), "nothing applied");

    // Line 5 repeats line 3's key: the first load is loaded again through the staging table, which names it.
    let first = "code,price\nA,1\nB,2\nC,3\nB,4\n";
    let summary = importer
        .run(&fares, &importer.file("first.csv", first.as_bytes()))
        .await;
    assert_eq!(summary.status, "succeeded", "{summary:?}");
    assert_eq!(
        (
            summary.counts.read,
            summary.counts.inserted,
            summary.counts.rejected
        ),
        (4, 3, 1)
    );
    let rejects = importer.stored_rejects(&summary).await;
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!(rejects[0].line, 5);
    assert!(rejects[0].reason.contains("repeats line 3"), "{rejects:?}");
    assert_eq!(rejects[0].raw, "B,4");
    assert_eq!(importer.keys(&fares).await, ["A", "B", "C"]);

    // The next load merges with what the first put in.
    let next = "code,price\nA,1\nB,20\nD,5\n";
    let summary = importer
        .run(&fares, &importer.file("next.csv", next.as_bytes()))
        .await;
    assert_eq!(summary.status, "succeeded", "{summary:?}");
    assert_eq!(
        (
            summary.counts.inserted,
            summary.counts.updated,
            summary.counts.deleted
        ),
        (1, 1, 0)
    );
    assert_eq!(importer.keys(&fares).await, ["A", "B", "C", "D"]);

    // A clean first load for another tenant's table rows: counted as inserted, every row.
    let other = Importer::start(engine, "import_first_load_clean").await;
    let summary = other
        .run(&fares, &other.file("clean.csv", next.as_bytes()))
        .await;
    assert_eq!(
        (
            summary.status,
            summary.counts.inserted,
            summary.counts.rejected
        ),
        ("succeeded", 3, 0)
    );
    assert_eq!(other.keys(&fares).await, ["A", "B", "D"]);
}

backend_tests!(
    a_file_loads_in_every_form_and_the_same_content_is_skipped,
    replace_mode_removes_exactly_the_rows_the_new_file_lacks,
    over_budget_applies_nothing_and_keeps_its_rejects_with_their_lines,
    a_repeated_key_is_rejected_naming_the_first_line,
    a_dry_run_reports_every_reject_and_writes_nothing,
    a_first_load_goes_straight_in_and_still_names_a_repeated_key,
);
