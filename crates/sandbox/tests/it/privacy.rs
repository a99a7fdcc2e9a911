//! No card number and no access token ever reaches the sandbox's files.

use crate::common::{Harness, DECLINED_CARD, GOOD_CARD};

#[tokio::test]
async fn sandbox_files_never_contain_card_numbers_or_tokens() {
    let mut h = Harness::start().await;
    let token = h.token().await;
    let good = h.tokenise(&token, GOOD_CARD).await;
    h.tokenise(&token, DECLINED_CARD).await;
    h.charge(&token, "privacy", 1_000, &good).await;
    // Restarting closes the database, so everything is in the files (WAL checkpointed into
    // sandbox.db).
    h.restart().await;

    let mut scanned = 0;
    for entry in std::fs::read_dir(h.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        for secret in [GOOD_CARD, DECLINED_CARD, token.as_str()] {
            assert!(
                !bytes
                    .windows(secret.len())
                    .any(|window| window == secret.as_bytes()),
                "{} contains a secret",
                path.display()
            );
        }
        scanned += bytes.len();
    }
    assert!(h.dir.path().join("sandbox.db").exists());
    // The card tokens themselves are in there, so the scan looked at real data.
    let db = std::fs::read(h.dir.path().join("sandbox.db")).unwrap();
    assert!(db
        .windows(good.len())
        .any(|window| window == good.as_bytes()));
    assert!(scanned > 0);
}
