//! Declarations: a bad one is one line naming the file, the field and what is wrong; a change that adds a
//! column migrates the table, one that would drop or retype a column is refused and changes nothing.

use skybook_import::declaration;
use skybook_storage::{Engine, FeedTableChange, StorageError};
use skybook_testkit::backend_tests;

use crate::harness::{feed, Importer};

#[test]
fn bad_declarations_name_the_file_the_field_and_the_problem() {
    let cases = [
        ("name = \"Bad Name\"\nkey = [\"a\"]\n[[columns]]\nname = \"a\"\ntype = \"text\"\n", "x.toml: name: must be"),
        ("name = \"f\"\nkey = [\"b\"]\n[[columns]]\nname = \"a\"\ntype = \"text\"\n", "x.toml: key[0]: \"b\" is not a declared column"),
        ("name = \"f\"\nkey = [\"a\"]\n[[columns]]\nname = \"a\"\ntype = \"strng\"\n", "x.toml: columns[0].type: \"strng\" is not a type"),
        ("name = \"f\"\nkey = [\"a\"]\n[[columns]]\nname = \"a\"\ntype = \"integer\"\nmin = 5\nmax = 1\n", "x.toml: columns[0].min: min 5 is above max 1"),
        ("name = \"f\"\nkey = [\"a\"]\n[[columns]]\nname = \"a\"\ntype = \"text\"\npattern = \"([a-z\"\n", "x.toml: columns[0].pattern: not a regular expression"),
        ("name = \"f\"\nkey = [\"a\"]\n[[columns]]\nname = \"a\"\ntype = \"text\"\ntypo = 1\n", "x.toml: line 5: unknown field `typo`"),
        ("name = \"f\"\nkey = [\"a\"]\nmode = \"merge\"\n[[columns]]\nname = \"a\"\ntype = \"text\"\n", "x.toml: mode: \"merge\""),
        ("name = \"f\"\nkey = [\"a\"]\n[dialect]\nencoding = \"ebcdic\"\n[[columns]]\nname = \"a\"\ntype = \"text\"\n", "x.toml: dialect.encoding"),
    ];
    for (text, expected) in cases {
        let error = declaration::parse("x.toml", text).unwrap_err().to_string();
        assert!(
            error.starts_with(expected),
            "{error:?} should start with {expected:?}"
        );
        assert!(!error.contains('\n'), "one line: {error:?}");
    }
}

#[test]
fn an_operators_feeds_join_the_built_in_ones_and_may_replace_them() {
    let dir = skybook_testkit::test_dir("feeds_dir");
    let declare = |file: &str, name: &str, schedule: &str| {
        let text = format!("name = \"{name}\"\nkey = [\"code\"]\nschedule = \"{schedule}\"\n[[columns]]\nname = \"code\"\ntype = \"text\"\n");
        std::fs::write(dir.join(file), text).unwrap();
    };
    declare("extra.toml", "fares", "0 0 3 * * *");
    declare("mine.toml", "flights", "0 */5 * * * *");
    let feeds = declaration::load_all(Some(&dir)).unwrap();
    let names: Vec<&str> = feeds.iter().map(|f| f.name()).collect();
    assert_eq!(names, ["flights", "airports", "fares"]);
    assert_eq!(
        feeds[0].schedule.as_deref(),
        Some("0 */5 * * * *"),
        "the operator's flights replaced the built-in"
    );
    declare("zz.toml", "fares", "0 0 4 * * *");
    let error = declaration::load_all(Some(&dir)).unwrap_err().to_string();
    assert!(
        error.contains("zz.toml: name: feed \"fares\" is already declared by"),
        "{error}"
    );
}

const V1: &str = "name = \"fares\"\nkey = [\"code\"]\n[[columns]]\nname = \"code\"\ntype = \"text\"\n[[columns]]\nname = \"amount\"\ntype = \"money\"\n";

async fn additive_changes_migrate_and_lossy_ones_are_refused(engine: Engine) {
    let importer = Importer::start(engine, "import_evolve").await;
    let v1 = feed(V1);
    let path = importer.file("v1.csv", b"code,amount\nA,100\nB,200\n");
    assert_eq!(importer.run(&v1, &path).await.status, "succeeded");

    let v2 = feed(&format!(
        "{V1}[[columns]]\nname = \"note\"\ntype = \"text\"\n"
    ));
    let change = importer.store.ensure_feed_table(&v2.table).await.unwrap();
    assert_eq!(change, FeedTableChange::Added(vec!["note".into()]));
    let path = importer.file("v2.csv", b"code,amount,note\nC,300,new\n");
    let summary = importer.run(&v2, &path).await;
    assert_eq!(
        (summary.status, summary.counts.inserted),
        ("succeeded", 1),
        "{summary:?}"
    );
    assert_eq!(importer.keys(&v2).await, ["A", "B", "C"]);

    let dropped = feed("name = \"fares\"\nkey = [\"code\"]\n[[columns]]\nname = \"code\"\ntype = \"text\"\n[[columns]]\nname = \"note\"\ntype = \"text\"\n");
    let retyped = feed(&format!(
        "{}[[columns]]\nname = \"note\"\ntype = \"text\"\n",
        V1.replace("type = \"money\"", "type = \"text\"")
    ));
    for (declaration, column, says) in [
        (dropped, "amount", "drops it"),
        (retyped, "amount", "from money to text"),
    ] {
        match importer.store.ensure_feed_table(&declaration.table).await {
            Err(StorageError::FeedSchema {
                feed,
                column: c,
                reason,
            }) => {
                assert_eq!((feed.as_str(), c.as_str()), ("fares", column));
                assert!(reason.contains(says), "{reason}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    assert_eq!(
        importer.keys(&v2).await,
        ["A", "B", "C"],
        "the table is as it was"
    );
}

backend_tests!(additive_changes_migrate_and_lossy_ones_are_refused);
