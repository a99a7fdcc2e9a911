use chrono::{DateTime, Duration, TimeZone, Utc};
use futures::future::join_all;
use skybook_storage::{Engine, NewJob};
use skybook_testkit::backend_tests;
use skybook_worker::{CronScheduler, Schedule};

fn job() -> NewJob {
    NewJob {
        queue: "default".into(),
        kind: "sentinel".into(),
        payload: "{}".into(),
        priority: 0,
        max_attempts: 3,
        run_at: Utc::now(),
        unique_key: None,
        tenant_id: None,
    }
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap() + Duration::seconds(seconds)
}

async fn two_nodes_fire_each_tick_exactly_once(engine: Engine) {
    let store = skybook_testkit::store(engine, "cron_two_nodes").await;
    let schedule = || Schedule::new("every-second", "* * * * * *", job()).unwrap();
    let nodes = [
        CronScheduler::new(store.clone(), "node-a", vec![schedule()]),
        CronScheduler::new(store.clone(), "node-b", vec![schedule()]),
    ];
    let mut fired_by_a = 0;
    for second in 0..20 {
        // Both nodes see the same tick at the same moment (and a few later passes within that second).
        let mut fired = 0;
        for offset_ms in [0, 300, 700] {
            let now = at(second) + Duration::milliseconds(offset_ms);
            let results = join_all(nodes.iter().map(|n| n.tick(now))).await;
            fired += results
                .iter()
                .map(|r| r.as_ref().unwrap().len())
                .sum::<usize>();
            fired_by_a += results[0].as_ref().unwrap().len();
        }
        assert_eq!(
            fired, 1,
            "second {second}: fired exactly once across both nodes"
        );
    }
    assert_eq!(store.cron_ticks_fired("every-second").await.unwrap(), 20);
    let jobs = store
        .claim_jobs("default", "check", at(30), Duration::minutes(1), 100)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 20, "one job per tick");
    println!("node a fired {fired_by_a} of 20 ticks");
}

async fn a_schedule_that_missed_ticks_fires_once(engine: Engine) {
    let store = skybook_testkit::store(engine, "cron_missed").await;
    let node = CronScheduler::new(
        store.clone(),
        "node",
        vec![Schedule::new("minutely", "0 * * * * *", job()).unwrap()],
    );
    assert_eq!(
        node.tick(at(5)).await.unwrap(),
        vec![("minutely".to_owned(), at(0))]
    );
    assert!(
        node.tick(at(30)).await.unwrap().is_empty(),
        "same tick, already fired"
    );
    // Down for ten minutes: the first pass afterwards fires the latest tick only.
    let fired = node.tick(at(10 * 60 + 20)).await.unwrap();
    assert_eq!(fired, vec![("minutely".to_owned(), at(10 * 60))]);
    assert_eq!(store.cron_ticks_fired("minutely").await.unwrap(), 2);
}

#[test]
fn a_bad_pattern_names_the_schedule() {
    let error = Schedule::new("sentinel", "every tuesday", job())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("sentinel") && error.contains("every tuesday"),
        "{error}"
    );
}

async fn an_exclusive_schedule_skips_ticks_while_its_last_run_is_unfinished(engine: Engine) {
    let store = skybook_testkit::store(engine, "cron_exclusive").await;
    let schedule = Schedule::new("sweep", "* * * * * *", job())
        .unwrap()
        .exclusive();
    let node = CronScheduler::new(store.clone(), "node-a", vec![schedule]);
    assert_eq!(node.tick(at(0)).await.unwrap().len(), 1);
    assert!(
        node.tick(at(1)).await.unwrap().is_empty(),
        "the first run is still queued"
    );
    let run = store
        .claim_jobs("default", "w", at(1), Duration::minutes(1), 10)
        .await
        .unwrap();
    assert_eq!(run.len(), 1);
    assert!(
        node.tick(at(2)).await.unwrap().is_empty(),
        "the first run is still running"
    );
    assert!(store.complete_job(run[0].id, "w", at(2)).await.unwrap());
    assert_eq!(
        node.tick(at(3)).await.unwrap().len(),
        1,
        "finished: the next tick runs"
    );
    assert_eq!(
        store
            .job_counts("sentinel")
            .await
            .unwrap()
            .iter()
            .map(|(_, n)| n)
            .sum::<i64>(),
        2
    );
}

/// Declared schedules are listed with their next tick; a paused one's ticks pass unfired on every node and are
/// not made up on resume; "run now" fires once however many ask in the same second.
async fn operators_pause_resume_and_run_a_schedule_now(engine: Engine) {
    let store = skybook_testkit::store(engine, "cron_operators").await;
    let schedule = || Schedule::new("every-second", "* * * * * *", job()).unwrap();
    let nodes = [
        CronScheduler::new(store.clone(), "node-a", vec![schedule()]),
        CronScheduler::new(store.clone(), "node-b", vec![schedule()]),
    ];
    for node in &nodes {
        node.register().await.unwrap();
    }
    let listed = store.cron_schedules().await.unwrap();
    assert_eq!(listed.len(), 1, "declared once, however many nodes");
    assert_eq!(
        (listed[0].pattern.as_str(), listed[0].kind.as_str()),
        ("* * * * * *", "sentinel")
    );
    assert!(listed[0].next_at.is_some());

    assert!(nodes[0].tick(at(0)).await.unwrap().len() == 1);
    let last_job = store.cron_schedules().await.unwrap()[0]
        .last_job_id
        .expect("the tick's job");
    assert_eq!(store.job(last_job).await.unwrap().unwrap().kind, "sentinel");

    assert!(store
        .set_cron_paused("every-second", true, Utc::now())
        .await
        .unwrap());
    assert!(
        !store
            .set_cron_paused("every-second", true, Utc::now())
            .await
            .unwrap(),
        "paused already"
    );
    for second in 1..5 {
        for node in &nodes {
            assert!(node.tick(at(second)).await.unwrap().is_empty(), "paused");
        }
    }
    assert!(store
        .set_cron_paused("every-second", false, Utc::now())
        .await
        .unwrap());
    assert_eq!(
        nodes[1].tick(at(5)).await.unwrap(),
        [("every-second".to_owned(), at(5))]
    );
    assert_eq!(
        store.cron_ticks_fired("every-second").await.unwrap(),
        2,
        "the paused ticks are not made up"
    );

    // Run now, asked twice in one second (two operators, two nodes): one run.
    let now = at(100);
    let first = store.run_cron_now("every-second", now).await.unwrap();
    let second = store.run_cron_now("every-second", now).await.unwrap();
    assert!(
        matches!(first, Some(skybook_storage::Enqueued::New(_))),
        "{first:?}"
    );
    assert_eq!(second, None, "the second's tick was taken");
    assert_eq!(store.run_cron_now("nonexistent", now).await.unwrap(), None);
    assert_eq!(store.cron_ticks_fired("every-second").await.unwrap(), 3);
}

backend_tests!(
    two_nodes_fire_each_tick_exactly_once,
    a_schedule_that_missed_ticks_fires_once,
    an_exclusive_schedule_skips_ticks_while_its_last_run_is_unfinished,
    operators_pause_resume_and_run_a_schedule_now,
);
