//! PostgreSQL failing over under load: a primary and a standby behind a switchable read-write endpoint (the
//! test's forwarder, standing in for a cluster's `-rw` Service), two `serve` nodes and a worker on it, eight
//! clients booking. The primary is SIGKILLed mid-stream, the standby promoted, the endpoint switched.
//!
//! - With a **synchronous** standby nothing acknowledged is lost: every 201 is confirmed on the new primary,
//!   every 202 settles, one charge per booking, and no skybook process exits.
//! - With an **asynchronous** one the new primary lacks what the old one committed last; the sentinel refunds
//!   exactly those charges, alerts on each, and refunds nothing else.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use skybook_domain::{BookingReference, Flight};
use skybook_storage::{Store, Tenant};
use skybook_testkit::fixtures::{booking_body, tenant_with_flight, CARD_OK};
use skybook_testkit::forwarder::Forwarder;
use skybook_testkit::postgres::{ReplicatedPostgres, Replication};
use skybook_testkit::process::{
    deployment, migrate, sandbox_charges, sandbox_faults, sandbox_stats, settled_status,
    start_sandbox, start_serve, Running,
};
use skybook_testkit::stream::{book_until_acknowledged, BookingStream, StreamRecord, STREAM_EMAIL};

const EXE: &str = env!("CARGO_BIN_EXE_skybook");

/// A deployment on a replicated cluster, reached through the read-write endpoint.
struct Deployment {
    pg: ReplicatedPostgres,
    endpoint: Forwarder,
    sandbox: String,
    nodes: Vec<String>,
    worker: Running,
    processes: Vec<Running>,
    tenant: Tenant,
    flight: Flight,
    http: reqwest::Client,
}

impl Deployment {
    async fn start(name: &str, replication: Replication) -> Self {
        let dir = skybook_testkit::test_dir(name);
        let pg = ReplicatedPostgres::start(&dir.join("pg"), replication);
        let endpoint = Forwarder::start(pg.primary_addr()).await;
        let url = ReplicatedPostgres::url_at(endpoint.addr);
        migrate(EXE, &url);
        let store = skybook_testkit::store_at(&url).await;
        let (tenant, flight) = tenant_with_flight(&store, "air", 5000).await;
        store.close().await;
        let (sandbox_process, sandbox) = start_sandbox(EXE, &dir);
        let mut processes = vec![sandbox_process];
        let mut nodes = Vec::new();
        for i in 0..2 {
            let (node, base) = start_serve(EXE, &dir, &format!("node-{i}"), &url, &sandbox);
            processes.push(node);
            nodes.push(base);
        }
        let mut cmd = deployment(EXE, "worker", &url, &sandbox);
        cmd.env("SKYBOOK_SENTINEL_SCHEDULE", "* * * * * *")
            .env("SKYBOOK_SENTINEL_SETTLE_AFTER", "2s")
            // "sentinel sweep: nothing to do" is a DEBUG line.
            .env("RUST_LOG", "info,skybook_booking=debug");
        let worker = Running::start(cmd, &dir, "worker");
        worker.wait_for_line("background workers starting");
        Self {
            pg,
            endpoint,
            sandbox,
            nodes,
            worker,
            processes,
            tenant,
            flight,
            http: reqwest::Client::new(),
        }
    }

    /// Waits (bounded) until the sandbox has made `n` charges: the stream's progress, observed from outside.
    async fn wait_for_charges(&self, n: i64) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while sandbox_charges(&self.sandbox).await < n {
            assert!(
                Instant::now() < deadline,
                "the stream stalled below {n} charges"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the primary, promotes the standby, switches the endpoint; returns when the primary was killed and
    /// when the endpoint was switched.
    fn fail_over(&self) -> (Instant, Instant) {
        let killed = Instant::now();
        self.pg.kill_primary();
        self.pg.promote_standby();
        self.endpoint.switch_to(self.pg.standby_addr());
        (killed, Instant::now())
    }

    /// [`Deployment::fail_over`] with the endpoint switched too early, to the standby still in recovery (an
    /// endpoint that follows a failover manager's first guess): nodes must refuse it as their primary until it
    /// is promoted.
    fn fail_over_switching_early(&self) -> (Instant, Instant) {
        let killed = Instant::now();
        self.pg.kill_primary();
        self.endpoint.switch_to(self.pg.standby_addr());
        let switched = Instant::now();
        // A node has met the standby and turned it down (its phase retry logs why) before it is promoted.
        self.processes[1].wait_for_line("a standby in recovery");
        self.pg.promote_standby();
        eprintln!(
            "failover: a node turned the unpromoted standby down; promoted at {:.2} s",
            killed.elapsed().as_secs_f64()
        );
        (killed, switched)
    }

    /// The new primary, connected to directly (not through the endpoint).
    async fn new_primary(&self) -> Store {
        skybook_testkit::store_at(&ReplicatedPostgres::url_at(self.pg.standby_addr())).await
    }

    async fn settled(&self, reference: &str) -> String {
        settled_status(&self.http, &self.nodes[0], "air", reference, STREAM_EMAIL).await
    }

    fn assert_all_running(&mut self) {
        assert!(
            self.worker.is_running(),
            "the worker exited; see {}",
            self.worker.log.display()
        );
        for process in &mut self.processes {
            assert!(
                process.is_running(),
                "a process exited; see {}",
                process.log.display()
            );
        }
    }
}

fn report_window(record: &StreamRecord, killed: Instant, switched: Instant) {
    let after_kill = |at: Instant| at.saturating_duration_since(killed).as_secs_f64();
    let first_after_switch = record
        .acknowledged
        .iter()
        .map(|a| a.at)
        .filter(|at| *at > switched)
        .min();
    eprintln!(
        "failover: {} bookings acknowledged ({} after client retries); primary killed at 0 s, endpoint switched at {:.2} s, first booking acknowledged after the switch at {:.2} s",
        record.acknowledged.len(),
        record.acknowledged.iter().filter(|a| a.attempts > 1).count(),
        after_kill(switched),
        first_after_switch.map_or(f64::NAN, after_kill),
    );
    match record.refused_window() {
        Some((from, to)) => eprintln!(
            "failover: bookings refused (503/409, retried) from {:.2} s to {:.2} s",
            after_kill(from),
            after_kill(to)
        ),
        None => eprintln!(
            "failover: no booking was refused; the server's phase retries carried every one over"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bookings_survive_a_failover_to_a_synchronous_standby() {
    let mut deployment = Deployment::start("failover-sync", Replication::Synchronous).await;
    let stream = BookingStream::start(&deployment.nodes, "air", &deployment.flight, 8, "failover");
    deployment.wait_for_charges(30).await;
    // The next charges' answers are lost: those bookings are acknowledged 202 and left to the sentinel, which
    // settles them on whichever primary is there by then.
    sandbox_faults(
        &deployment.sandbox,
        serde_json::json!({"lose_next_charge_responses": 40}),
    )
    .await;
    deployment.wait_for_charges(40).await;
    let (killed, switched) = deployment.fail_over_switching_early();
    let charged_at_switch = sandbox_charges(&deployment.sandbox).await;
    deployment.wait_for_charges(charged_at_switch + 40).await;
    let record = stream.finish().await;
    report_window(&record, killed, switched);
    assert!(
        record.acknowledged.iter().any(|a| a.at < killed)
            && record.acknowledged.iter().any(|a| a.at > switched),
        "bookings were acknowledged on both sides of the failover"
    );
    assert!(
        record.acknowledged.iter().any(|a| a.status == 202),
        "some bookings were left to the sentinel"
    );

    // Every 201 is confirmed on the new primary, read there directly; every 202 settles confirmed.
    let new_primary = deployment.new_primary().await;
    for a in &record.acknowledged {
        let reference = BookingReference::parse(&a.reference).unwrap();
        let booking = new_primary
            .booking_by_reference(deployment.tenant.id, &reference)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged booking {} lost in the failover", a.reference));
        if a.status == 201 {
            assert_eq!(booking.status.to_string(), "confirmed", "{}", a.reference);
        }
        assert_eq!(
            deployment.settled(&a.reference).await,
            "confirmed",
            "{}",
            a.reference
        );
    }
    // One charge per booking, none refunded, no seat sold beyond them.
    let stats = sandbox_stats(&deployment.sandbox).await;
    assert_eq!(
        stats["charges"].as_i64(),
        Some(record.acknowledged.len() as i64),
        "{stats}"
    );
    assert_eq!(stats["refunds"].as_i64(), Some(0), "{stats}");
    let sold = 5000
        - skybook_testkit::fixtures::seats_left(
            &new_primary,
            &deployment.tenant,
            &deployment.flight,
        )
        .await;
    assert_eq!(
        sold as usize,
        record.acknowledged.len(),
        "seats sold = bookings acknowledged"
    );
    deployment.assert_all_running();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_asynchronous_failover_refunds_exactly_what_the_new_primary_lost() {
    const LOST: usize = 5;
    let mut deployment = Deployment::start("failover-async", Replication::Asynchronous).await;
    let stream = BookingStream::start(&deployment.nodes, "air", &deployment.flight, 4, "before");
    deployment.wait_for_charges(20).await;
    let before = stream.finish().await.acknowledged;

    // The standby stops following; what the primary acknowledges from here on only it has.
    deployment.pg.detach_standby();
    let mut last = StreamRecord::default();
    for i in 0..LOST {
        let body = booking_body(
            &deployment.flight,
            "Ann",
            &format!("Lost{}", skybook_testkit::stream::letters(i)),
            CARD_OK,
        );
        let node = &deployment.nodes[i % 2];
        book_until_acknowledged(
            &deployment.http,
            node,
            "air",
            &format!("lost-{i}-{}", uuid::Uuid::new_v4().simple()),
            &body,
            &mut last,
        )
        .await;
    }
    assert!(
        last.acknowledged.iter().all(|a| a.status == 201),
        "{last:?}"
    );
    // Their charges, read from the old primary while it lives.
    let old_primary =
        skybook_testkit::store_at(&ReplicatedPostgres::url_at(deployment.pg.primary_addr())).await;
    let mut lost_charges = BTreeSet::new();
    for a in &last.acknowledged {
        let booking = old_primary
            .booking_by_reference(
                deployment.tenant.id,
                &BookingReference::parse(&a.reference).unwrap(),
            )
            .await
            .unwrap()
            .unwrap();
        lost_charges.insert(
            booking
                .charge_id
                .expect("a confirmed booking has its charge"),
        );
    }
    old_primary.close().await;

    let (killed, switched) = deployment.fail_over();
    let stream = BookingStream::start(&deployment.nodes, "air", &deployment.flight, 4, "after");
    let charged_at_switch = sandbox_charges(&deployment.sandbox).await;
    deployment.wait_for_charges(charged_at_switch + 10).await;
    let after = stream.finish().await;
    report_window(&after, killed, switched);

    // The sentinel refunds the lost bookings' charges; two sweeps after that find nothing more to do.
    let deadline = Instant::now() + Duration::from_secs(90);
    while sandbox_stats(&deployment.sandbox).await["refunds"].as_i64() < Some(LOST as i64) {
        assert!(
            Instant::now() < deadline,
            "the sentinel never refunded the lost bookings' charges"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    deployment.worker.skip_printed();
    for _ in 0..2 {
        deployment
            .worker
            .wait_for_line("sentinel sweep: nothing to do");
    }

    let new_primary = deployment.new_primary().await;
    let mut missing = BTreeSet::new();
    for a in before
        .iter()
        .chain(&last.acknowledged)
        .chain(&after.acknowledged)
    {
        let reference = BookingReference::parse(&a.reference).unwrap();
        match new_primary
            .booking_by_reference(deployment.tenant.id, &reference)
            .await
            .unwrap()
        {
            Some(_) => assert_eq!(
                deployment.settled(&a.reference).await,
                "confirmed",
                "{}",
                a.reference
            ),
            None => {
                missing.insert(a.reference.clone());
            }
        }
    }
    let lost: BTreeSet<String> = last
        .acknowledged
        .iter()
        .map(|a| a.reference.clone())
        .collect();
    assert_eq!(
        missing, lost,
        "the new primary lacks exactly what was committed after the standby fell behind"
    );
    eprintln!("async failover: {} acknowledged bookings lost with the old primary, their charges refunded", lost.len());

    // Each lost booking's charge refunded and alerted; nothing else refunded.
    let stats = sandbox_stats(&deployment.sandbox).await;
    assert_eq!(stats["refunds"].as_i64(), Some(LOST as i64), "{stats}");
    let alerted: BTreeSet<String> = new_primary
        .recent_alerts(None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.kind == "orphan_charge")
        .map(|a| a.subject)
        .collect();
    assert_eq!(
        alerted, lost_charges,
        "one orphan-charge alert per lost booking's charge"
    );
    let kept = before.len() + after.acknowledged.len();
    assert_eq!(
        stats["charges"].as_i64(),
        Some((kept + LOST) as i64),
        "{stats}"
    );
    deployment.assert_all_running();
}
