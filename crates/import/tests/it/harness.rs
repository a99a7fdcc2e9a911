//! A tenant on a fresh store, files written under the test's directory, and one call to run an import.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use skybook_import::{declaration, run_import, FeedType, ImportRequest, Limits, Source, Summary};
use skybook_storage::{Engine, ImportReject, Store, Tenant};

pub struct Importer {
    pub store: Store,
    /// The store's database, for edits from outside skybook.
    pub url: String,
    pub tenant: Tenant,
    pub dir: PathBuf,
}

impl Importer {
    pub async fn start(engine: Engine, name: &str) -> Self {
        let url = skybook_testkit::fresh_database_url(engine, name).await;
        let store = skybook_testkit::store_at(&url).await;
        let tenant = store
            .ensure_tenant(&skybook_domain::TenantSlug::parse("air").unwrap(), "Air")
            .await
            .unwrap();
        Self {
            store,
            url,
            tenant,
            dir: skybook_testkit::test_dir(name),
        }
    }

    /// Writes `bytes` to a file named `name` in the test's directory.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Imports the file at `path` as `feed`.
    pub async fn run(&self, feed: &FeedType, path: &Path) -> Summary {
        self.run_with(feed, path, false).await
    }

    pub async fn run_with(&self, feed: &FeedType, path: &Path, dry_run: bool) -> Summary {
        let limits = Limits::default();
        let source = match Source::from_file(path, feed.entry.as_deref(), limits) {
            Ok(source) => source,
            Err(e) => {
                return Summary {
                    run: None,
                    status: "failed",
                    counts: Default::default(),
                    error: Some(e.to_string()),
                    rejects: vec![],
                    transient: false,
                }
            }
        };
        let request = ImportRequest {
            run: skybook_domain::ImportRunId::new(),
            tenant: &self.tenant,
            feed,
            source: Arc::new(source),
            label: path.display().to_string(),
            feed_date: None,
            dry_run,
            limits,
        };
        run_import(&self.store, request, &|_, _| {}).await.unwrap()
    }

    pub async fn keys(&self, feed: &FeedType) -> Vec<String> {
        self.store
            .feed_keys(&feed.table, self.tenant.id)
            .await
            .unwrap_or_default()
    }

    pub async fn stored_rejects(&self, summary: &Summary) -> Vec<ImportReject> {
        self.store
            .import_rejects(summary.run.unwrap())
            .await
            .unwrap()
    }
}

/// The built-in feed `name`.
pub fn built_in(name: &str) -> FeedType {
    declaration::load_all(None)
        .unwrap()
        .into_iter()
        .find(|f| f.name() == name)
        .unwrap()
}

pub fn feed(toml: &str) -> FeedType {
    declaration::parse("test.toml", toml).unwrap()
}

pub const AIRPORTS_CSV: &str = "iata,name,city,country,timezone\n\
    DUB,Dublin,Dublin,IE,Europe/Dublin\n\
    LHR,London Heathrow,London,GB,Europe/London\n\
    CDG,Paris Charles de Gaulle,Paris,FR,Europe/Paris\n";

pub fn flights_csv(rows: usize) -> String {
    let mut csv =
        String::from("number,origin,destination,departs_at,capacity,fare_minor,currency\n");
    for i in 0..rows {
        csv.push_str(&format!(
            "AI{},DUB,LHR,2027-01-{:02}T07:30:00Z,180,{},EUR\n",
            100 + i,
            1 + i % 28,
            4999 + i
        ));
    }
    csv
}

/// A zip holding `entries` (name, content).
pub fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// The partner's envelope around `zip`.
pub fn envelope(zip: &[u8]) -> Vec<u8> {
    format!(
        "{{\"filename\": \"x.csv\", \"data\": \"{}\"}}",
        base64::engine::general_purpose::STANDARD.encode(zip)
    )
    .into_bytes()
}
