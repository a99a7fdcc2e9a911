//! Headless Chromium driven over WebDriver (Debian's `chromium` + `chromedriver`, installed by `scripts/test`).

use std::path::{Path, PathBuf};

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

use crate::process::Running;

/// One chromedriver process; each [`Chrome::browser`] is a fresh browser profile (its own cookies).
pub struct Chrome {
    _driver: Running,
    url: String,
    shots: PathBuf,
}

impl Chrome {
    pub fn start(dir: &Path) -> Self {
        let driver_path =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        assert!(
            Path::new(&driver_path).exists(),
            "{driver_path} is missing: run scripts/test (it installs chromium and chromium-driver)"
        );
        // chromedriver needs a port up front; ask the OS for a free one.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = std::process::Command::new(driver_path);
        cmd.arg(format!("--port={port}"));
        let driver = Running::start(cmd, dir, "chromedriver");
        driver.wait_for_line("started successfully");
        let shots = dir.join("screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Self {
            _driver: driver,
            url: format!("http://127.0.0.1:{port}"),
            shots,
        }
    }

    /// A new headless browser with an empty profile.
    pub async fn browser(&self) -> Client {
        let mut caps = Capabilities::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
                // The background-networking flags keep Chromium off the (closed) network.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-quic", "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--window-size=1100,1400"]
            }),
        );
        ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("start a browser session")
    }

    /// Saves a PNG of the page as `<test output>/screenshots/<name>.png`.
    pub async fn screenshot(&self, browser: &Client, name: &str) {
        browser
            .execute("window.scrollTo(0, 0)", vec![])
            .await
            .unwrap();
        let png = browser.screenshot().await.expect("screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }
}

/// Types into the input with this id, replacing what it held.
pub async fn fill(browser: &Client, id: &str, text: &str) {
    let input = browser
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"));
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

/// The current value of the input with this id.
pub async fn value(browser: &Client, id: &str) -> String {
    browser
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

pub async fn text(browser: &Client, css: &str) -> String {
    browser
        .wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}
