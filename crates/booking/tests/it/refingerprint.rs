//! A booking made before names were compared on their machine-readable form keeps guarding against duplicates
//! once it has been fingerprinted again.

use skybook_storage::Engine;
use skybook_testkit::backend_tests;
use skybook_testkit::fixtures::CARD_OK;
use skybook_web::BookingAnswer;

use crate::harness::{key, Pipeline};

/// Rewinds every booking to the fingerprint form of an earlier release (as the deploy found them).
async fn as_before_the_deploy(app: &Pipeline) {
    let rewound = skybook_testkit::execute_outside(
        &app.url,
        "UPDATE bookings SET fingerprint_version = 1, entity_fingerprint = 'legacy-' || reference",
    )
    .await
    .unwrap();
    assert!(rewound > 0);
}

async fn a_booking_from_before_the_deploy_still_refuses_its_duplicate(engine: Engine) {
    let app = Pipeline::start(engine, "refingerprint", 5).await;
    let first = app
        .book(&key("old", 0), app.request("Zoe", "Wu", CARD_OK))
        .await
        .unwrap();
    assert!(
        matches!(first.answer, BookingAnswer::Confirmed(_)),
        "{}",
        first.body
    );
    as_before_the_deploy(&app).await;

    let done = app.bookings.refingerprint_legacy().await.unwrap();
    assert_eq!((done.updated, done.duplicates), (1, 0));
    assert_eq!(
        app.bookings.refingerprint_legacy().await.unwrap(),
        Default::default(),
        "once is enough"
    );

    let again = app
        .book(&key("new", 0), app.request("ZOE", "Wu", CARD_OK))
        .await
        .unwrap();
    assert!(
        matches!(again.answer, BookingAnswer::Duplicate(_)),
        "{}",
        again.body
    );
    assert_eq!(
        app.charges().await,
        1,
        "never billed twice across the deploy"
    );
}

/// Two live bookings that were one traveller all along (booked before names were compared this way): the second
/// keeps its old fingerprint and is alerted, not touched.
async fn two_bookings_of_one_traveller_from_before_are_alerted(engine: Engine) {
    let app = Pipeline::start(engine, "refingerprint_twins", 5).await;
    for (i, given) in ["Zoe", "Zoé"].into_iter().enumerate() {
        let answer = app
            .book(&key("twin", i), app.request(given, "Wu", CARD_OK))
            .await
            .unwrap();
        if i == 1 {
            // Today they are one traveller: the second is refused at once.
            assert!(
                matches!(answer.answer, BookingAnswer::Duplicate(_)),
                "{}",
                answer.body
            );
        }
    }
    // Make the second as an earlier release would have: a booking of its own.
    let legacy = app
        .book(&key("twin", 2), app.request("Zoe", "Wu-Li", CARD_OK))
        .await
        .unwrap();
    assert!(
        matches!(legacy.answer, BookingAnswer::Confirmed(_)),
        "{}",
        legacy.body
    );
    as_before_the_deploy(&app).await;
    // ...whose passengers are now the first's (the names an earlier release told apart).
    skybook_testkit::execute_outside(
        &app.url,
        "UPDATE bookings SET passengers = (SELECT passengers FROM bookings b2 WHERE b2.id <> bookings.id LIMIT 1) \
         WHERE passengers LIKE '%Wu-Li%'",
    )
    .await
    .unwrap();

    let done = app.bookings.refingerprint_legacy().await.unwrap();
    assert_eq!((done.updated, done.duplicates), (1, 1));
    let alerts = app.store.recent_alerts(None, 10).await.unwrap();
    assert_eq!(
        alerts.iter().map(|a| a.kind.as_str()).collect::<Vec<_>>(),
        ["duplicate_traveller"]
    );
    assert!(
        app.store
            .legacy_fingerprinted_bookings(10)
            .await
            .unwrap()
            .is_empty(),
        "both are current now, and left as they were"
    );
}

backend_tests!(
    a_booking_from_before_the_deploy_still_refuses_its_duplicate,
    two_bookings_of_one_traveller_from_before_are_alerted,
);
