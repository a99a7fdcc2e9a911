//! The website's session store on our migrations' `sessions` table, on both engines.

use std::collections::HashMap;

use skybook_storage::Engine;
use skybook_testkit::backend_tests;
use tower_sessions::session::{Id, Record};
use tower_sessions::{ExpiredDeletion, SessionStore};

fn record(expires_in: time::Duration) -> Record {
    Record {
        id: Id::default(),
        data: HashMap::from([("search".to_owned(), serde_json::json!({"origin": "DUB"}))]),
        expiry_date: time::OffsetDateTime::now_utc() + expires_in,
    }
}

async fn sessions_round_trip_and_expired_ones_are_purged(engine: Engine) {
    let store = skybook_testkit::store(engine, "sessions").await;
    let sessions = store.session_store().unwrap();

    let mut live = record(time::Duration::days(30));
    sessions.create(&mut live).await.unwrap();
    let loaded = sessions
        .load(&live.id)
        .await
        .unwrap()
        .expect("a live session loads");
    assert_eq!(loaded.data, live.data);

    let mut expired = record(-time::Duration::minutes(1));
    sessions.create(&mut expired).await.unwrap();
    assert!(
        sessions.load(&expired.id).await.unwrap().is_none(),
        "an expired session is not served"
    );

    sessions.delete_expired().await.unwrap();
    // Only the purge removes rows; saving the expired record's id again shows whether it still existed.
    assert!(
        sessions.load(&live.id).await.unwrap().is_some(),
        "the purge keeps live sessions"
    );
    let mut revived = expired.clone();
    revived.expiry_date = time::OffsetDateTime::now_utc() + time::Duration::days(1);
    sessions.create(&mut revived).await.unwrap();
    assert_eq!(
        revived.id, expired.id,
        "the purged id was free again, so create kept it"
    );

    sessions.delete(&live.id).await.unwrap();
    assert!(sessions.load(&live.id).await.unwrap().is_none());
}

backend_tests!(sessions_round_trip_and_expired_ones_are_purged);
