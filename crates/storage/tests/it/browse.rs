//! The data browser's pages over a feed's table as it stands: every row exactly once, however it is sorted,
//! rows without a value included (a column a declaration gained is empty in the rows from before it, whatever
//! the declaration says), and a decimal key of two spellings of one number (SQLite keeps both) not skipped.

use chrono::Utc;
use skybook_domain::feed::{ColumnType, FeedColumn, FeedTable, Identifier};
use skybook_domain::TenantSlug;
use skybook_storage::{Browsable, BrowseQuery, Engine, Store};
use skybook_testkit::backend_tests;

fn column(name: &str, ty: ColumnType, required: bool) -> FeedColumn {
    FeedColumn {
        name: Identifier::parse(name).unwrap(),
        ty,
        required,
    }
}

fn table(name: &str, columns: Vec<FeedColumn>) -> FeedTable {
    FeedTable {
        name: Identifier::parse(name).unwrap(),
        columns,
        key: vec![0],
    }
}

/// The tenant's id as a literal of `engine`.
fn tenant_literal(engine: Engine, id: skybook_domain::TenantId) -> String {
    match engine {
        Engine::Postgres => format!("'{id}'::uuid"),
        Engine::Sqlite => format!("X'{}'", id.as_uuid().simple()),
    }
}

/// Every page of `query` (pages of `query.limit`), the first column's values in order.
async fn all_pages(store: &Store, table: &Browsable, mut query: BrowseQuery) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let rows = store.browse(table, &query).await.unwrap();
        seen.extend(rows.iter().map(|r| r.values[0].to_string()));
        if (rows.len() as i64) < query.limit {
            return seen;
        }
        query.after = rows.last().map(|r| r.cursor(table, &query));
        assert!(seen.len() < 1000, "pages without end: {seen:?}");
    }
}

async fn every_row_once_whatever_the_order(engine: Engine) {
    let url = skybook_testkit::fresh_database_url(engine, "browse").await;
    let store = skybook_testkit::store_at(&url).await;
    let tenant = store
        .ensure_tenant(&TenantSlug::parse("acme").unwrap(), "Acme")
        .await
        .unwrap();
    let t = tenant_literal(engine, tenant.id);
    let run = tenant_literal(engine, skybook_domain::TenantId::new());
    let now = match engine {
        Engine::Postgres => "now()".to_owned(),
        Engine::Sqlite => format!("'{}'", Utc::now().to_rfc3339()),
    };
    let first = table(
        "scores",
        vec![
            column("code", ColumnType::Text, true),
            column("score", ColumnType::Decimal, false),
        ],
    );
    store.ensure_feed_table(&first).await.unwrap();
    for (code, score) in [
        ("a", "2.5"),
        ("b", "NULL"),
        ("c", "10"),
        ("d", "2.5"),
        ("e", "NULL"),
    ] {
        let score = if score == "NULL" {
            score.to_owned()
        } else {
            format!("'{score}'")
        };
        let sql = format!(
            "INSERT INTO feed_scores (tenant_id, code, score, run_id, updated_at) VALUES ({t}, '{code}', {score}, {run}, {now})"
        );
        skybook_testkit::execute_outside(&url, &sql).await.unwrap();
    }
    // The declaration gains a required column: the rows from before have none.
    let gained = table(
        "scores",
        vec![
            column("code", ColumnType::Text, true),
            column("score", ColumnType::Decimal, false),
            column("note", ColumnType::Text, true),
        ],
    );
    store.ensure_feed_table(&gained).await.unwrap();
    skybook_testkit::execute_outside(
        &url,
        "UPDATE feed_scores SET note = 'x' WHERE code IN ('a', 'c')",
    )
    .await
    .unwrap();
    // And one more, not built yet: the browser reads the table as it stands.
    let mut declared = gained.clone();
    declared
        .columns
        .push(column("later", ColumnType::Integer, false));
    let browsable = store
        .browsable_feed(&declared)
        .await
        .unwrap()
        .expect("built");
    let names: Vec<&str> = browsable.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["code", "score", "note"]);
    assert!(store
        .browsable_feed(&table("nothing", vec![column("k", ColumnType::Text, true)]))
        .await
        .unwrap()
        .is_none());

    for (sort, descending, want) in [
        (None, false, ["a", "b", "c", "d", "e"]),
        (Some(1), true, ["c", "a", "d", "b", "e"]),
        (Some(1), false, ["a", "d", "c", "b", "e"]),
        (Some(2), false, ["a", "c", "b", "d", "e"]),
        (Some(2), true, ["a", "c", "b", "d", "e"]),
    ] {
        let query = BrowseQuery {
            sort,
            descending,
            limit: 2,
            ..BrowseQuery::default()
        };
        assert_eq!(
            all_pages(&store, &browsable, query).await,
            want,
            "sort {sort:?} descending {descending}"
        );
    }

    // A decimal key: SQLite keeps `1.5` and `1.50` as two keys (PostgreSQL's NUMERIC, one).
    let keyed = table("levels", vec![column("level", ColumnType::Decimal, true)]);
    store.ensure_feed_table(&keyed).await.unwrap();
    let levels: &[&str] = match engine {
        Engine::Sqlite => &["1.5", "1.50", "2", "10"],
        Engine::Postgres => &["1.5", "2", "10"],
    };
    for level in levels {
        let sql = format!(
            "INSERT INTO feed_levels (tenant_id, level, run_id, updated_at) VALUES ({t}, '{level}', {run}, {now})"
        );
        skybook_testkit::execute_outside(&url, &sql).await.unwrap();
    }
    let levels_table = store.browsable_feed(&keyed).await.unwrap().unwrap();
    let got = all_pages(
        &store,
        &levels_table,
        BrowseQuery {
            limit: 1,
            ..BrowseQuery::default()
        },
    )
    .await;
    assert_eq!(got.len(), levels.len(), "every key once: {got:?}");
}

backend_tests!(every_row_once_whatever_the_order);
