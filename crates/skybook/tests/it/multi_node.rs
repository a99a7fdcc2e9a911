//! Two `skybook serve` processes sharing one PostgreSQL, with the sandbox as its own process: the duplicate
//! storms split across both nodes still give exactly one charge — the database, not a node-local check, is
//! the guard.

use futures::future::join_all;
use serde_json::Value;
use skybook_testkit::fixtures::{
    assert_one_booking_rest_duplicates, booking_body, tenant_with_flight, CARD_OK,
};
use skybook_testkit::Engine;

use skybook_testkit::process::{self, Running};

struct Cluster {
    nodes: Vec<String>,
    sandbox: String,
    _processes: Vec<Running>,
}

async fn cluster(name: &str) -> (Cluster, skybook_storage::Store, String) {
    let dir = skybook_testkit::test_dir(name);
    let url = skybook_testkit::fresh_database_url(Engine::Postgres, name).await;
    let exe = env!("CARGO_BIN_EXE_skybook");
    process::migrate(exe, &url);
    let (sandbox, sandbox_url) = process::start_sandbox(exe, &dir);
    let mut processes = vec![sandbox];
    let mut nodes = Vec::new();
    for i in 0..2 {
        let (node, base) =
            process::start_serve(exe, &dir, &format!("node-{i}"), &url, &sandbox_url);
        nodes.push(base);
        processes.push(node);
    }
    let store = skybook_storage::Store::connect(&url, &Default::default())
        .await
        .unwrap();
    (
        Cluster {
            nodes,
            sandbox: sandbox_url,
            _processes: processes,
        },
        store,
        url,
    )
}

impl Cluster {
    async fn post(
        &self,
        client: &reqwest::Client,
        i: usize,
        key: &str,
        body: &Value,
    ) -> (u16, Value) {
        process::post_booking(client, &self.nodes[i % self.nodes.len()], "air", key, body).await
    }

    async fn charges(&self) -> i64 {
        process::sandbox_charges(&self.sandbox).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_storms_across_two_nodes_charge_once() {
    let (cluster, store, _url) = cluster("two_nodes").await;
    let (tenant, flight) = tenant_with_flight(&store, "air", 100).await;
    let client = reqwest::Client::new();

    // One key, 50 requests, alternating nodes.
    let body = booking_body(&flight, "Ann", "Lee", CARD_OK);
    let key = format!("two-nodes-same-key-{}", uuid::Uuid::new_v4().simple());
    let results = join_all((0..50).map(|i| cluster.post(&client, i, &key, &body))).await;
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    assert!(
        created >= 1
            && results
                .iter()
                .all(|(s, b)| *s == 201 || (*s == 409 && b["error"] == "request_in_progress")),
        "{results:?}"
    );
    assert_eq!(cluster.charges().await, 1);

    // Fresh keys, one booking, alternating nodes.
    let body = booking_body(&flight, "Bryan", "Hunt", CARD_OK);
    let results = join_all((0..20).map(|i| {
        let key = format!("two-nodes-fresh-{i}-{}", uuid::Uuid::new_v4().simple());
        let (cluster, client, body) = (&cluster, &client, &body);
        async move { cluster.post(client, i, &key, body).await }
    }))
    .await;
    assert_one_booking_rest_duplicates(&results);
    assert_eq!(cluster.charges().await, 2);
    let flight = store.flight(tenant.id, flight.id).await.unwrap().unwrap();
    assert_eq!(flight.seats_sold, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_oversell_across_two_nodes() {
    let (cluster, store, _url) = cluster("two_nodes_rush").await;
    let (tenant, flight) = tenant_with_flight(&store, "air", 10).await;
    let client = reqwest::Client::new();
    let results = join_all((0..30).map(|i| {
        let body = booking_body(
            &flight,
            "Traveller",
            &format!("Rush{}", (b'A' + i as u8) as char),
            CARD_OK,
        );
        let key = format!("rush-{i}-{}", uuid::Uuid::new_v4().simple());
        let (cluster, client) = (&cluster, &client);
        async move { cluster.post(client, i, &key, &body).await }
    }))
    .await;
    let booked = results.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(booked, 10, "{results:?}");
    assert_eq!(cluster.charges().await, 10);
    assert_eq!(
        store
            .flight(tenant.id, flight.id)
            .await
            .unwrap()
            .unwrap()
            .seats_left(),
        0
    );
}
