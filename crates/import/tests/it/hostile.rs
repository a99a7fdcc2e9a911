//! Every bad input gets its clear error and changes nothing: the feed's table is exactly as before the run.

use skybook_storage::Engine;
use skybook_testkit::backend_tests;

use crate::harness::{built_in, envelope, feed, flights_csv, zip, Importer, AIRPORTS_CSV};

/// Loads the good airports first, so "changes nothing" is checked against data, not an empty table.
async fn with_airports(engine: Engine, name: &str) -> (Importer, skybook_import::FeedType) {
    let importer = Importer::start(engine, name).await;
    let airports = built_in("airports");
    let path = importer.file("good.csv", AIRPORTS_CSV.as_bytes());
    assert_eq!(importer.run(&airports, &path).await.status, "succeeded");
    (importer, airports)
}

async fn broken_files_fail_with_their_reason_and_change_nothing(engine: Engine) {
    let (importer, airports) = with_airports(engine, "import_broken").await;
    let csv = AIRPORTS_CSV.as_bytes();
    let mut bomb_content = b"iata,name,city,country,timezone\n".to_vec();
    bomb_content.resize(50 << 20, b'a'); // 50 MiB of one byte: deflates about 1000-fold
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.csv", vec![], "the file is empty"),
        ("blank.csv", b"\n\n".to_vec(), "no header row"),
        ("not-base64.json", b"{\"data\": \"@@@ not base64 @@@\"}".to_vec(), "not valid base64"),
        ("no-data.json", b"{\"filename\": \"x.csv\"}".to_vec(), "no \"data\" member"),
        ("not-a-zip.json", envelope(b"this is not a zip at all"), "not a zip archive"),
        ("no-csv.zip", zip(&[("readme.txt", b"hello")]), "holds no CSV"),
        ("two-csv.zip", zip(&[("a.csv", csv), ("b.csv", csv)]), "holds 2 CSV files"),
        ("bomb.zip", zip(&[("bomb.csv", &bomb_content)]), "zip bomb"),
        ("missing.csv", b"iata,city,country\nDUB,Dublin,IE\n".to_vec(), "lacks required column(s) name"),
        ("twice.csv", b"iata,name,code,country\nDUB,Dublin,DUB,IE\n".to_vec(), "names column \"iata\" twice"),
        ("semicolons.csv", b"iata;name;city;country;timezone\nDUB;Dublin;Dublin;IE;Europe/Dublin\n".to_vec(), "delimited by something other than ','"),
        ("unclosed.csv", b"iata,name,city,country,timezone\nMAD,\"Madrid,Madrid,ES,Europe/Madrid\nBCN,Barcelona,Barcelona,ES,Europe/Madrid\n".to_vec(), "line 2: a quoted field opened in this row is never closed"),
    ];
    for (name, bytes, expected) in cases {
        let path = importer.file(name, &bytes);
        let summary = importer.run(&airports, &path).await;
        assert_eq!(summary.status, "failed", "{name}: {summary:?}");
        let error = summary.error.clone().unwrap_or_default();
        assert!(
            error.contains(expected),
            "{name}: {error:?} should say {expected:?}"
        );
        assert_eq!(
            importer.keys(&airports).await,
            ["CDG", "DUB", "LHR"],
            "{name} changed the table"
        );
    }
}

async fn byte_order_marks_crlf_and_latin_1_are_read_right(engine: Engine) {
    let importer = Importer::start(engine, "import_encodings").await;
    let airports = built_in("airports");
    let crlf_bom = format!("\u{feff}{}", AIRPORTS_CSV.replace('\n', "\r\n"));
    let path = importer.file("bom.csv", crlf_bom.as_bytes());
    let summary = importer.run(&airports, &path).await;
    assert_eq!(
        (summary.status, summary.counts.inserted),
        ("succeeded", 3),
        "{summary:?}"
    );

    // A Latin-1 feed: "Zürich" and "Málaga" as single bytes.
    let latin = feed(
        "name = \"stations\"\nkey = [\"code\"]\n[dialect]\nencoding = \"latin-1\"\n\
         [[columns]]\nname = \"code\"\ntype = \"text\"\n[[columns]]\nname = \"city\"\ntype = \"text\"\n",
    );
    let bytes: Vec<u8> = [
        b"code,city\nZRH,Z".as_slice(),
        &[0xFC],
        b"rich\nAGP,M",
        &[0xE1],
        b"laga\n",
    ]
    .concat();
    let path = importer.file("latin.csv", &bytes);
    let summary = importer.run(&latin, &path).await;
    assert_eq!(summary.status, "succeeded", "{summary:?}");
    assert_eq!(importer.keys(&latin).await, ["AGP", "ZRH"]);
}

async fn invalid_utf_8_in_a_utf_8_feed_rejects_its_row_with_its_line(engine: Engine) {
    let importer = Importer::start(engine, "import_utf8").await;
    let flights = built_in("flights");
    // 200 good rows (lines 2..=201), then one whose number holds bytes that are not UTF-8.
    let bytes: Vec<u8> = [
        flights_csv(200).as_bytes(),
        b"AI9",
        &[0xFF, 0xFE],
        b",DUB,LHR,2027-01-01T07:30:00Z,180,4999,EUR\n",
    ]
    .concat();
    let path = importer.file("bad-utf8.csv", &bytes);
    let summary = importer.run(&flights, &path).await;
    assert_eq!(
        summary.status, "succeeded",
        "one reject is within the budget: {summary:?}"
    );
    let rejects = importer.stored_rejects(&summary).await;
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!(
        (rejects[0].line, rejects[0].column_name.as_deref()),
        (202, Some("number"))
    );
    assert_eq!(rejects[0].reason, "is not valid UTF-8");
    assert_eq!(importer.keys(&flights).await.len(), 200);
}

backend_tests!(
    broken_files_fail_with_their_reason_and_change_nothing,
    byte_order_marks_crlf_and_latin_1_are_read_right,
    invalid_utf_8_in_a_utf_8_feed_rejects_its_row_with_its_line,
);
