//! One container of the rendered manifests against the binary it runs: its arguments, variables, secrets,
//! ports, probes and resources.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;

use serde_json::Value;
use skybook_proxy::ProxyConfig;

use super::manifests::{kind, name, string_map, strings, LIVENESS_PATH, READINESS_PATH};
use crate::process::skybook;

/// A container as the cross-object checks see it.
pub(super) struct Container {
    /// `Deployment/skybook-web`.
    pub(super) owner: String,
    pub(super) pod_labels: BTreeMap<String, String>,
    pub(super) args: Vec<String>,
    /// containerPort name (or its number as text) → number.
    pub(super) ports: BTreeMap<String, u64>,
    /// The port of the site/API or the proxy, and of `serve --metrics-listen`.
    pub(super) listen: Option<u64>,
    pub(super) metrics: Option<u64>,
    pub(super) payments_url: Option<String>,
    /// The proxy's route prefixes.
    pub(super) routes: Vec<String>,
}

impl Container {
    pub(super) fn command(&self) -> &str {
        self.args.first().map_or("", String::as_str)
    }

    pub(super) fn port(&self, port: &Value) -> Option<u64> {
        port.as_u64()
            .or_else(|| self.ports.get(port.as_str()?).copied())
    }
}

/// The environment variables `skybook <command>` reads, as its `--help` lists them (`[env: NAME=]`), each with
/// whether its value is a secret (`hide_env_values`: listed as `[env: NAME]`).
fn variables_read_by(command: &str) -> BTreeMap<String, bool> {
    let output = skybook().args([command, "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout).into_owned();
    help.match_indices("[env: ")
        .map(|(at, marker)| {
            let rest = &help[at + marker.len()..];
            let spec = &rest[..rest.find(']').unwrap()];
            let name = spec.split('=').next().unwrap().to_owned();
            (name, !spec.contains('='))
        })
        .collect()
}

/// Checks one container and its pod against the binary and the other objects; returns what the
/// cross-object checks need.
pub(super) fn check_container(
    objects: &[Value],
    pod: &Value,
    owner: &str,
    container: &Value,
    p: &mut Vec<String>,
) -> Container {
    let who = format!(
        "{owner} container {}",
        container["name"].as_str().unwrap_or("?")
    );
    let args = strings(&container["args"]);
    if !container["command"].is_null() {
        p.push(format!(
            "{who} sets `command`: the image's entrypoint is /skybook, give `args`"
        ));
    }
    let command = args.first().cloned().unwrap_or_default();
    if !["serve", "worker", "migrate", "auth-proxy"].contains(&command.as_str()) {
        p.push(format!(
            "{who} runs `skybook {}`, not a command for a cluster",
            args.join(" ")
        ));
    }
    let help = skybook().args(&args).arg("--help").output().unwrap();
    if !help.status.success() {
        let stderr = String::from_utf8_lossy(&help.stderr);
        p.push(format!(
            "{who}: `skybook {}` does not parse: {stderr}",
            args.join(" ")
        ));
    }

    // The environment, name → (literal value, or None for a secretKeyRef).
    let mut env: BTreeMap<String, Option<String>> = BTreeMap::new();
    for var in container["env"].as_array().into_iter().flatten() {
        let var_name = var["name"].as_str().unwrap_or_default().to_owned();
        let value = if var["valueFrom"].is_null() {
            Some(var["value"].as_str().unwrap_or_default().to_owned())
        } else if var["valueFrom"]["secretKeyRef"].is_object() {
            None
        } else {
            p.push(format!(
                "{who}: {var_name} comes from neither a value nor a secretKeyRef"
            ));
            None
        };
        env.insert(var_name, value);
    }
    if !container["envFrom"].is_null() {
        p.push(format!(
            "{who} uses envFrom: name each variable, so each is checked against the binary"
        ));
    }

    // The proxy's config, read by the proxy's own parser; the variables it names must be set.
    let mut routes = Vec::new();
    let mut listen = None;
    let asked = RefCell::new(BTreeSet::new());
    if command == "auth-proxy" {
        match proxy_config(objects, pod, container, &args, &env, &asked) {
            Ok(config) => {
                listen = Some(config.listen);
                routes = config.routes.iter().map(|r| r.prefix.clone()).collect();
            }
            Err(e) => p.push(format!("{who}: its proxy config: {e}")),
        }
    }
    let reads = variables_read_by(&command);
    for (var_name, value) in &env {
        let secret = if var_name.starts_with("SKYBOOK_") {
            let Some(secret) = reads.get(var_name) else {
                p.push(format!(
                    "{who} sets {var_name}, which `skybook {command}` does not read"
                ));
                continue;
            };
            *secret
        } else if asked.borrow().contains(var_name) {
            true
        } else if var_name == "RUST_LOG" {
            false
        } else {
            p.push(format!(
                "{who} sets {var_name}, which nothing in `skybook {command}` reads"
            ));
            continue;
        };
        if secret && value.is_some() {
            p.push(format!(
                "{who} gives the secret {var_name} as a value: reference it (secretKeyRef)"
            ));
        }
    }
    if command == "serve" {
        let address = env
            .get("SKYBOOK_LISTEN")
            .cloned()
            .flatten()
            .unwrap_or("127.0.0.1:8080".into());
        listen = address.parse().ok();
        if let Some(metrics) = env.get("SKYBOOK_METRICS_LISTEN").cloned().flatten() {
            let metrics: Option<SocketAddr> = metrics.parse().ok();
            if !metrics.is_some_and(|m| m.ip().is_unspecified()) {
                p.push(format!(
                    "{who}: SKYBOOK_METRICS_LISTEN is not 0.0.0.0:port, so no scraper reaches it"
                ));
            }
            check_scrape_annotations(&who, pod, metrics.map(|m| u64::from(m.port())), p);
        }
    }
    if command == "auth-proxy" {
        // The proxy serves /metrics on its one port.
        check_scrape_annotations(&who, pod, listen.map(|l| u64::from(l.port())), p);
    }
    if let Some(address) = listen.filter(|l| !l.ip().is_unspecified()) {
        p.push(format!(
            "{who} listens on {address}: the kubelet and Services cannot reach it"
        ));
    }

    let ports: BTreeMap<String, u64> = container["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|port| {
            let number = port["containerPort"].as_u64().unwrap_or_default();
            let by_name = port["name"].as_str().map(|n| (n.to_owned(), number));
            by_name.into_iter().chain([(number.to_string(), number)])
        })
        .collect();
    let facts = Container {
        owner: owner.to_owned(),
        pod_labels: BTreeMap::new(),
        args,
        listen: listen.map(|l| u64::from(l.port())),
        metrics: env
            .get("SKYBOOK_METRICS_LISTEN")
            .cloned()
            .flatten()
            .and_then(|m| m.parse::<SocketAddr>().ok())
            .map(|m| u64::from(m.port())),
        payments_url: env.get("SKYBOOK_PAYMENTS_URL").cloned().flatten(),
        routes,
        ports,
    };
    let listening: BTreeSet<u64> = facts.listen.iter().chain(&facts.metrics).copied().collect();
    let declared: BTreeSet<u64> = facts.ports.values().copied().collect();
    if declared != listening {
        p.push(format!(
            "{who} declares containerPorts {declared:?} but listens on {listening:?}"
        ));
    }

    // Probes: all three on a container that serves HTTP, none on one that does not.
    for (probe, path) in [
        ("startupProbe", LIVENESS_PATH),
        ("livenessProbe", LIVENESS_PATH),
        ("readinessProbe", READINESS_PATH),
    ] {
        let get = &container[probe]["httpGet"];
        match (facts.listen, get.is_null()) {
            (None, false) => p.push(format!(
                "{who} has a {probe}, but `skybook {command}` serves no HTTP"
            )),
            (Some(_), true) => p.push(format!("{who} has no HTTP {probe}")),
            (None, true) => {}
            (Some(listen), false) => {
                if get["path"].as_str() != Some(path) {
                    p.push(format!(
                        "{who}: its {probe} asks {}, not {path}",
                        get["path"]
                    ));
                }
                if facts.port(&get["port"]) != Some(listen) {
                    p.push(format!(
                        "{who}: its {probe} port {} is not the listener's {listen}",
                        get["port"]
                    ));
                }
            }
        }
    }
    let resources = &container["resources"];
    for (part, resource) in [
        ("requests", "cpu"),
        ("requests", "memory"),
        ("limits", "memory"),
    ] {
        if resources[part][resource].is_null() {
            p.push(format!("{who} has no {part}.{resource}"));
        }
    }
    facts
}

/// The auth proxy's configuration as the pod would read it: the file named by `--config`, from the ConfigMap
/// mounted at its folder, parsed by the proxy itself with the container's environment.
fn proxy_config(
    objects: &[Value],
    pod: &Value,
    container: &Value,
    args: &[String],
    env: &BTreeMap<String, Option<String>>,
    asked: &RefCell<BTreeSet<String>>,
) -> Result<ProxyConfig, String> {
    let at = args
        .iter()
        .position(|a| a == "--config")
        .ok_or("no --config argument")?;
    let path = Path::new(args.get(at + 1).ok_or("--config without a path")?);
    let (folder, file) = (
        path.parent().unwrap(),
        path.file_name().unwrap().to_string_lossy(),
    );
    let mount = container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["mountPath"].as_str().map(Path::new) == Some(folder))
        .ok_or_else(|| format!("nothing is mounted at {}", folder.display()))?;
    let volume = pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == mount["name"])
        .ok_or("the mounted volume is not declared")?;
    let config_map = volume["configMap"]["name"]
        .as_str()
        .ok_or("the volume is not a ConfigMap")?;
    let text = objects
        .iter()
        .find(|o| kind(o) == "ConfigMap" && name(o) == config_map)
        .and_then(|o| o["data"][file.as_ref()].as_str())
        .ok_or_else(|| format!("ConfigMap {config_map} has no {file}"))?;
    let lookup = |var: &str| {
        asked.borrow_mut().insert(var.to_owned());
        env.contains_key(var).then(|| "set-by-the-pod".to_owned())
    };
    ProxyConfig::parse(text, Path::new("/"), &lookup).map_err(|e| e.to_string())
}

/// /metrics on `port` is scraped: the pod's Prometheus annotations name that port.
fn check_scrape_annotations(who: &str, pod: &Value, port: Option<u64>, p: &mut Vec<String>) {
    let annotations = string_map(&pod["metadata"]["annotations"]);
    let annotated = annotations
        .get("prometheus.io/port")
        .and_then(|a| a.parse::<u64>().ok());
    if annotations.get("prometheus.io/scrape").map(String::as_str) != Some("true")
        || annotated != port
    {
        p.push(format!(
            "{who}: its pod's prometheus.io annotations do not scrape /metrics on {port:?}"
        ));
    }
    if annotations
        .get("prometheus.io/path")
        .is_some_and(|path| path != "/metrics")
    {
        p.push(format!(
            "{who}: its pod's prometheus.io/path is not /metrics"
        ));
    }
}
