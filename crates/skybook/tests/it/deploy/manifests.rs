//! The kustomizations under deploy/, rendered as an operator applies them, and the agreements between their
//! objects: Services and their pods' ports, the migration Job, the autoscaler, the proxy's callers.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use skybook_testkit::process::DEPLOYMENT_SECRET;

use super::containers::{check_container, Container};
use super::{image_user, repo, run_tool};
use crate::process::{skybook, Running};

const RENDERED: [&str; 2] = ["deploy/base", "deploy/overlays/example"];
/// The paths Kubernetes probes: liveness and startup ask only "is the process serving", readiness "can it
/// serve a booking" (database and schema).
pub(super) const LIVENESS_PATH: &str = "/health_check";
pub(super) const READINESS_PATH: &str = "/ready";

/// The objects `kubectl kustomize <dir>` renders, as JSON. Kustomize prints only YAML; `kubectl patch --local`
/// with an empty patch prints each object back as JSON without a cluster, so the test needs no YAML parser.
fn rendered(dir: &str) -> Vec<Value> {
    let mut kustomize = Command::new("kubectl");
    kustomize.arg("kustomize").arg(repo().join(dir));
    let yaml = run_tool(kustomize, None, &format!("`kubectl kustomize {dir}`"));
    let mut to_json = Command::new("kubectl");
    to_json.args([
        "patch",
        "--local",
        "--filename=-",
        "--type=merge",
        "--patch={}",
        "--output=json",
    ]);
    let json = run_tool(
        to_json,
        Some(yaml),
        "reading the rendered YAML (`kubectl patch --local`)",
    );
    let mut objects = Vec::new();
    for value in serde_json::Deserializer::from_slice(&json).into_iter::<Value>() {
        let value = value.expect("kubectl prints JSON objects");
        match value["kind"].as_str() {
            Some("List") => objects.extend(value["items"].as_array().cloned().unwrap_or_default()),
            _ => objects.push(value),
        }
    }
    assert!(
        objects.len() >= 10,
        "{dir} rendered only {} objects",
        objects.len()
    );
    objects
}

pub(super) fn kind(object: &Value) -> &str {
    object["kind"].as_str().unwrap_or("?")
}

pub(super) fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or("?")
}

pub(super) fn string_map(value: &Value) -> BTreeMap<String, String> {
    let Some(map) = value.as_object() else {
        return BTreeMap::new();
    };
    map.iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect()
}

pub(super) fn strings(value: &Value) -> Vec<String> {
    let Some(items) = value.as_array() else {
        return Vec::new();
    };
    items
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A label selector's `matchLabels` picks `labels` (an empty selector picks nothing here: every selector in
/// these manifests names its workload).
fn selects(match_labels: &Value, labels: &BTreeMap<String, String>) -> bool {
    let wanted = string_map(match_labels);
    !wanted.is_empty() && wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Every check of one rendered kustomization; returns its containers for the probe check.
fn check_rendered(dir: &str, objects: &[Value], uid: u64, p: &mut Vec<String>) -> Vec<Container> {
    let mut containers = Vec::new();
    let mut images = BTreeSet::new();
    for object in objects {
        let template = match kind(object) {
            "Deployment" | "Job" => &object["spec"]["template"],
            "Secret" => {
                p.push(format!(
                    "{dir} contains Secret/{}: secrets are only referenced",
                    name(object)
                ));
                continue;
            }
            _ => continue,
        };
        let owner = format!("{dir}: {}/{}", kind(object), name(object));
        let labels = string_map(&template["metadata"]["labels"]);
        if kind(object) == "Deployment"
            && !selects(&object["spec"]["selector"]["matchLabels"], &labels)
        {
            p.push(format!("{owner}: its selector does not pick its own pods"));
        }
        let security = &template["spec"]["securityContext"];
        if security["runAsNonRoot"] != true || security["runAsUser"].as_u64() != Some(uid) {
            p.push(format!(
                "{owner}: not runAsNonRoot as the image's user {uid}"
            ));
        }
        for volume in template["spec"]["volumes"].as_array().into_iter().flatten() {
            if !volume["secret"].is_null() || !volume["projected"].is_null() {
                p.push(format!(
                    "{owner}: mounts a secret volume; reference secrets with secretKeyRef"
                ));
            }
        }
        for container in template["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
        {
            images.insert(container["image"].as_str().unwrap_or_default().to_owned());
            let mut facts = check_container(objects, template, &owner, container, p);
            // Without the folder: the messages about two objects name it once.
            facts.owner = format!("{}/{}", kind(object), name(object));
            facts.pod_labels = labels.clone();
            containers.push(facts);
        }
    }
    // One image runs every workload (the Dockerfile's), pinned to a release.
    let pinned = |image: &String| {
        image.contains('@')
            || image
                .rsplit_once(':')
                .is_some_and(|(_, tag)| tag != "latest")
    };
    if images.len() != 1 || !images.iter().all(pinned) {
        p.push(format!(
            "{dir}: the workloads run {images:?}, not one pinned image"
        ));
    }
    let in_kind = |k: &'static str| {
        containers
            .iter()
            .filter(move |c| c.owner.starts_with(&format!("{k}/")))
    };
    let jobs: Vec<&Container> = in_kind("Job").collect();
    if jobs.len() != 1 || jobs[0].args != ["migrate"] {
        p.push(format!(
            "{dir}: one Job, running `skybook migrate` and nothing else (found {:?})",
            jobs.iter().map(|j| j.args.join(" ")).collect::<Vec<_>>()
        ));
    }
    let served: BTreeSet<String> = in_kind("Deployment").map(|c| c.args.join(" ")).collect();
    for wanted in ["serve --no-workers", "worker"] {
        if !served.contains(wanted) {
            p.push(format!(
                "{dir}: no Deployment runs `skybook {wanted}` (found {served:?})"
            ));
        }
    }
    if !served.iter().any(|s| s.starts_with("auth-proxy")) {
        p.push(format!("{dir}: no Deployment runs the auth proxy"));
    }
    let selected = |selector: &Value| -> Vec<&Container> {
        in_kind("Deployment")
            .filter(|c| selects(selector, &c.pod_labels))
            .collect()
    };

    for object in objects {
        let what = format!("{dir}: {}/{}", kind(object), name(object));
        match kind(object) {
            "Service" => {
                let backends = selected(&object["spec"]["selector"]);
                if backends.is_empty() {
                    p.push(format!("{what} selects no Deployment's pods"));
                }
                for port in object["spec"]["ports"].as_array().into_iter().flatten() {
                    let target = if port["targetPort"].is_null() {
                        &port["port"]
                    } else {
                        &port["targetPort"]
                    };
                    for backend in &backends {
                        match backend.port(target) {
                            None => p.push(format!(
                                "{what}: {target} is not a containerPort of {}",
                                backend.owner
                            )),
                            Some(n) if Some(n) == backend.metrics => {
                                p.push(format!(
                                    "{what} exposes {}'s metrics port {n}",
                                    backend.owner
                                ));
                            }
                            Some(_) => {}
                        }
                    }
                }
            }
            "PodDisruptionBudget"
                if selected(&object["spec"]["selector"]["matchLabels"]).is_empty() =>
            {
                p.push(format!("{what} selects no Deployment's pods"));
            }
            "HorizontalPodAutoscaler" => {
                let target = &object["spec"]["scaleTargetRef"];
                let scaled = objects
                    .iter()
                    .find(|o| kind(o) == "Deployment" && name(o) == target["name"]);
                match scaled {
                    None => p.push(format!("{what} scales {target}, which is not here")),
                    // The HPA owns the count; a `replicas` in the manifest resets it on every apply.
                    Some(d) if !d["spec"]["replicas"].is_null() => {
                        p.push(format!(
                            "{what} scales a Deployment that sets its own replicas"
                        ));
                    }
                    Some(_) => {}
                }
            }
            _ => {}
        }
    }
    for client in &containers {
        if let Some(url) = &client.payments_url {
            check_payments_route(dir, objects, &containers, client, url, p);
        }
    }
    containers
}

/// SKYBOOK_PAYMENTS_URL names a Service of these manifests: its port, a route of the proxy behind it, and a
/// NetworkPolicy of that proxy that admits the caller.
fn check_payments_route(
    dir: &str,
    objects: &[Value],
    containers: &[Container],
    client: &Container,
    url: &str,
    p: &mut Vec<String>,
) {
    let who = format!("{dir}: {}", client.owner);
    let Ok(url) = url::Url::parse(url) else {
        p.push(format!("{who}: SKYBOOK_PAYMENTS_URL {url:?} is not a URL"));
        return;
    };
    let host = url.host_str().unwrap_or_default();
    if host.contains('.') {
        return; // A provider outside the cluster.
    }
    let Some(service) = objects
        .iter()
        .find(|o| kind(o) == "Service" && name(o) == host)
    else {
        p.push(format!(
            "{who}: SKYBOOK_PAYMENTS_URL names {host}, which is no Service here"
        ));
        return;
    };
    let ports = &service["spec"]["ports"];
    let port = ports
        .as_array()
        .into_iter()
        .flatten()
        .find(|sp| sp["port"].as_u64() == url.port_or_known_default().map(u64::from));
    if port.is_none() {
        p.push(format!(
            "{who}: SKYBOOK_PAYMENTS_URL's port is not a port of Service/{host}"
        ));
    }
    let path = url.path();
    let proxies: Vec<&Container> = containers
        .iter()
        .filter(|c| c.owner.starts_with("Deployment/"))
        .filter(|c| selects(&service["spec"]["selector"], &c.pod_labels))
        .collect();
    for proxy in &proxies {
        let routed = proxy
            .routes
            .iter()
            .any(|r| path == r || path.starts_with(&format!("{r}/")));
        if !routed {
            p.push(format!(
                "{who}: {path} is not a route of {} ({:?})",
                proxy.owner, proxy.routes
            ));
        }
        for policy in objects.iter().filter(|o| kind(o) == "NetworkPolicy") {
            if !selects(
                &policy["spec"]["podSelector"]["matchLabels"],
                &proxy.pod_labels,
            ) {
                continue;
            }
            let admitted = policy["spec"]["ingress"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|rule| {
                    rule["from"].as_array().into_iter().flatten().any(|peer| {
                        peer["namespaceSelector"].is_null()
                            && selects(&peer["podSelector"]["matchLabels"], &client.pod_labels)
                    })
                });
            if !admitted {
                p.push(format!(
                    "{who} calls {}, but NetworkPolicy/{} does not admit it",
                    proxy.owner,
                    name(policy)
                ));
            }
        }
    }
}

/// The status of `GET <path>` at `addr`, over a plain socket.
fn status_of(addr: &str, path: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Each probed command started for real (`serve` on SQLite, the proxy with a static-header route, so neither
/// needs a third party), and each probe path asked: it must answer 200.
fn check_probe_paths_are_served(containers: &[Container], p: &mut Vec<String>) {
    let dir = skybook_testkit::test_dir("deploy-probes");
    let mut started: BTreeSet<&str> = BTreeSet::new();
    for container in containers.iter().filter(|c| c.listen.is_some()) {
        if !started.insert(container.command()) {
            continue;
        }
        let mut cmd = skybook();
        let (process, addr) = if container.command() == "serve" {
            cmd.args(&container.args)
                .args(["--listen", "127.0.0.1:0"])
                .env(
                    "SKYBOOK_DATABASE_URL",
                    format!("sqlite://{}", dir.join("skybook.db").display()),
                )
                .env("SKYBOOK_SECRET_KEY", DEPLOYMENT_SECRET)
                .env("SKYBOOK_PAYMENTS_URL", "http://127.0.0.1:9");
            let process = Running::start(cmd, &dir, "serve");
            let addr = process.serving_url();
            (process, addr)
        } else {
            let config = dir.join("auth-proxy.toml");
            std::fs::write(
                &config,
                "listen = \"127.0.0.1:0\"\nworkers = 1\n[[route]]\nprefix = \"/k\"\nupstream = \"http://127.0.0.1:9\"\n\
                 static_header = \"X-Api-Key\"\nstatic_value_env = \"DEPLOY_TEST_KEY\"\n",
            )
            .unwrap();
            cmd.args(["auth-proxy", "--config"])
                .arg(&config)
                .env("DEPLOY_TEST_KEY", "k");
            let process = Running::start(cmd, &dir, "auth-proxy");
            let addr = process.url_after("auth proxy listening on");
            (process, addr)
        };
        let addr = addr.trim_start_matches("http://");
        for path in [LIVENESS_PATH, READINESS_PATH] {
            let status = status_of(addr, path);
            if status != 200 {
                p.push(format!(
                    "`skybook {}` answers {path} with {status}",
                    container.command()
                ));
            }
        }
        drop(process);
    }
}

#[test]
fn the_manifests_agree_with_the_binary() {
    let uid = image_user();
    let mut problems = Vec::new();
    let mut containers = Vec::new();
    for dir in RENDERED {
        let objects = rendered(dir);
        containers.extend(check_rendered(dir, &objects, uid, &mut problems));
    }
    // Only manifests that agree are started for real: a command line that does not parse was named above.
    if problems.is_empty() {
        check_probe_paths_are_served(&containers, &mut problems);
    }
    assert!(
        problems.is_empty(),
        "the manifests disagree with the binary:\n{}",
        problems.join("\n")
    );
}
