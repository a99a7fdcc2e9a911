//! The proxy's TOML configuration, checked completely at startup: any mistake is one line naming the key.
//!
//! ```toml
//! listen = "127.0.0.1:9000"
//! [[route]]
//! prefix = "/payments"
//! upstream = "http://127.0.0.1:7000"
//! token_url = "http://127.0.0.1:7000/oauth/token"
//! client_id = "skybook"
//! client_secret_env = "PAYMENTS_CLIENT_SECRET"   # or client_secret_file = "..."
//! scope = "payments"                              # optional
//! headers = { "X-Partner" = "skybook" }           # optional, injected as given
//! ```
//!
//! A route authenticates in exactly one way: OAuth2 client credentials (`token_url` + `client_id` +
//! `client_secret_env|client_secret_file`), a signed-JWT client assertion (`token_url` + `client_id` +
//! `private_key_file`, optional `private_key_alg` RS256|ES256), or a static header
//! (`static_header` + `static_value_env|static_value_file`, e.g. `Authorization` = `Bearer ...` or `X-Api-Key`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

/// A configuration error: one line, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

fn err(key: &str, problem: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("invalid {key}: {problem}"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    /// Worker threads (default: one per core).
    workers: Option<usize>,
    /// Defaults for every route.
    connect_timeout_ms: Option<u64>,
    read_timeout_ms: Option<u64>,
    default_token_ttl_secs: Option<u64>,
    #[serde(default)]
    route: Vec<RawRoute>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    prefix: Option<String>,
    upstream: Option<String>,
    token_url: Option<String>,
    client_id: Option<String>,
    client_secret_env: Option<String>,
    client_secret_file: Option<PathBuf>,
    private_key_file: Option<PathBuf>,
    private_key_alg: Option<String>,
    scope: Option<String>,
    audience: Option<String>,
    #[serde(default)]
    token_params: BTreeMap<String, String>,
    static_header: Option<String>,
    static_value_env: Option<String>,
    static_value_file: Option<PathBuf>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    connect_timeout_ms: Option<u64>,
    read_timeout_ms: Option<u64>,
    default_token_ttl_secs: Option<u64>,
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub listen: SocketAddr,
    /// Single-threaded workers, each with its own listener and upstream pools.
    pub workers: usize,
    pub routes: Vec<RouteConfig>,
}

#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// `/payments`: no trailing slash; matches `/payments` and `/payments/...`.
    pub prefix: String,
    pub upstream: Url,
    pub auth: RouteAuth,
    /// Injected into every forwarded request, replacing any the client sent.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub connect_timeout: Duration,
    /// Upper bound from sending the request to the upstream's response headers.
    pub read_timeout: Duration,
}

#[derive(Debug, Clone)]
pub enum RouteAuth {
    ClientCredentials {
        token_url: Url,
        client_id: String,
        client_secret: SecretString,
        scope: Option<String>,
        audience: Option<String>,
        params: Vec<(String, String)>,
        default_ttl: Duration,
    },
    PrivateKeyJwt {
        /// The key is read and checked at load time.
        client: skybook_clients::JwtClient,
        default_ttl: Duration,
    },
    Static {
        header: HeaderName,
        /// Marked sensitive so it never appears in `Debug` output of the header map.
        value: HeaderValue,
    },
}

impl ProxyConfig {
    /// Reads and checks the file at `path`; `env` resolves `*_env` keys (the process environment in production).
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!(
                "cannot read the proxy config {}: {e}",
                path.display()
            ))
        })?;
        Self::parse(&text, path.parent().unwrap_or(Path::new(".")), env)
    }

    /// Parses TOML text; relative file paths are resolved against `base`.
    pub fn parse(
        text: &str,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let message = e.message().to_owned();
            ConfigError(format!("invalid proxy config: {message}"))
        })?;
        let listen_raw = raw.listen.as_deref().unwrap_or("127.0.0.1:9000");
        let listen = listen_raw.parse().map_err(|_| {
            err(
                "listen",
                format!("{listen_raw:?} is not host:port, e.g. 127.0.0.1:9000"),
            )
        })?;
        if raw.route.is_empty() {
            return Err(ConfigError(
                "invalid proxy config: no [[route]] given".into(),
            ));
        }
        let defaults = Defaults {
            connect_timeout_ms: raw.connect_timeout_ms.unwrap_or(2_000),
            read_timeout_ms: raw.read_timeout_ms.unwrap_or(30_000),
            default_token_ttl_secs: raw.default_token_ttl_secs.unwrap_or(300),
        };
        let mut routes: Vec<RouteConfig> = Vec::new();
        for (i, route) in raw.route.into_iter().enumerate() {
            let route = route_config(i, route, &defaults, base, env)?;
            if routes.iter().any(|r| r.prefix == route.prefix) {
                return Err(err(
                    &format!("route[{i}].prefix"),
                    format!("{:?} is used twice", route.prefix),
                ));
            }
            routes.push(route);
        }
        let workers = match raw.workers {
            Some(0) => return Err(err("workers", "must be at least 1")),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        Ok(Self {
            listen,
            workers,
            routes,
        })
    }
}

struct Defaults {
    connect_timeout_ms: u64,
    read_timeout_ms: u64,
    default_token_ttl_secs: u64,
}

fn route_config(
    i: usize,
    raw: RawRoute,
    defaults: &Defaults,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<RouteConfig, ConfigError> {
    let key = |name: &str| format!("route[{i}].{name}");
    let required = |value: Option<String>, name: &str| {
        value.ok_or_else(|| ConfigError(format!("missing {}", key(name))))
    };

    let prefix = required(raw.prefix, "prefix")?;
    let prefix = prefix.trim_end_matches('/').to_owned();
    if !prefix.starts_with('/') || prefix.len() < 2 || prefix.contains(['?', '#', ' ']) {
        return Err(err(
            &key("prefix"),
            format!("{prefix:?} must look like /name"),
        ));
    }
    let upstream = http_url(&required(raw.upstream, "upstream")?, &key("upstream"))?;
    if upstream.scheme() != "http" {
        // In-cluster hops are plain HTTP; TLS to the outside belongs to the egress gateway for now.
        return Err(err(
            &key("upstream"),
            format!(
                "{:?}: only http:// upstreams are supported",
                upstream.as_str()
            ),
        ));
    }
    if upstream.query().is_some() || upstream.fragment().is_some() {
        // The request's own path and query are appended to the upstream's path; a query here would be lost.
        return Err(err(
            &key("upstream"),
            format!(
                "{:?}: a base URL without query or fragment",
                upstream.as_str()
            ),
        ));
    }

    let secret_from = |env_key: Option<String>,
                       file: Option<PathBuf>,
                       env_name: &str,
                       file_name: &str|
     -> Result<Option<SecretString>, ConfigError> {
        match (env_key, file) {
            (Some(_), Some(_)) => Err(err(
                &key(env_name),
                format!("give {} or {}, not both", key(env_name), key(file_name)),
            )),
            (Some(var), None) => match env(&var) {
                Some(v) if !v.trim().is_empty() => {
                    Ok(Some(SecretString::from(v.trim().to_owned())))
                }
                _ => Err(err(
                    &key(env_name),
                    format!("environment variable {var} is not set"),
                )),
            },
            (None, Some(path)) => {
                let path = base.join(path);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    err(
                        &key(file_name),
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                Ok(Some(SecretString::from(text.trim().to_owned())))
            }
            (None, None) => Ok(None),
        }
    };

    let client_secret = secret_from(
        raw.client_secret_env,
        raw.client_secret_file,
        "client_secret_env",
        "client_secret_file",
    )?;
    let static_value = secret_from(
        raw.static_value_env,
        raw.static_value_file,
        "static_value_env",
        "static_value_file",
    )?;
    let default_ttl = Duration::from_secs(
        raw.default_token_ttl_secs
            .unwrap_or(defaults.default_token_ttl_secs)
            .max(1),
    );
    let params: Vec<(String, String)> = raw.token_params.into_iter().collect();

    let auth = match (raw.static_header, raw.private_key_file, client_secret) {
        (Some(header), None, None) => {
            if raw.token_url.is_some() || raw.client_id.is_some() {
                return Err(err(&key("static_header"), "a static-header route takes no token_url or client_id"));
            }
            let header = HeaderName::try_from(header.as_str())
                .map_err(|_| err(&key("static_header"), format!("{header:?} is not a header name")))?;
            let value = static_value.ok_or_else(|| ConfigError(format!("missing {} (or {})", key("static_value_env"), key("static_value_file"))))?;
            let mut value = HeaderValue::try_from(secrecy::ExposeSecret::expose_secret(&value))
                .map_err(|_| err(&key("static_value_env"), "the value is not a valid header value"))?;
            value.set_sensitive(true);
            RouteAuth::Static { header, value }
        }
        (None, Some(key_file), None) => {
            let token_url = http_url(&required(raw.token_url, "token_url")?, &key("token_url"))?;
            let client_id = required(raw.client_id, "client_id")?;
            let path = base.join(&key_file);
            let pem = std::fs::read_to_string(&path)
                .map_err(|e| err(&key("private_key_file"), format!("cannot read {}: {e}", path.display())))?;
            let algorithm = raw.private_key_alg.unwrap_or_else(|| "RS256".into());
            if !matches!(algorithm.as_str(), "RS256" | "ES256") {
                return Err(err(&key("private_key_alg"), format!("{algorithm:?}: expected RS256 or ES256")));
            }
            let mut client =
                skybook_clients::JwtClient::new(token_url, client_id, &SecretString::from(pem), &algorithm)
                    .map_err(|e| err(&key("private_key_file"), e))?;
            client.scope = raw.scope;
            client.audience = raw.audience;
            client.extra_params = params;
            RouteAuth::PrivateKeyJwt { client, default_ttl }
        }
        (None, None, Some(client_secret)) => {
            let token_url = http_url(&required(raw.token_url, "token_url")?, &key("token_url"))?;
            let client_id = required(raw.client_id, "client_id")?;
            RouteAuth::ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scope: raw.scope,
                audience: raw.audience,
                params,
                default_ttl,
            }
        }
        (None, None, None) => {
            return Err(ConfigError(format!(
                "missing credentials for {}: give client_secret_env/client_secret_file, private_key_file, or static_header",
                key("prefix").trim_end_matches(".prefix")
            )))
        }
        _ => {
            return Err(ConfigError(format!(
                "invalid {}: give exactly one of client_secret_env/client_secret_file, private_key_file, static_header",
                key("prefix").trim_end_matches(".prefix")
            )))
        }
    };

    let mut headers = Vec::new();
    for (name, value) in raw.headers {
        let header_key = key(&format!("headers.{name}"));
        let name = HeaderName::try_from(name.as_str())
            .map_err(|_| err(&header_key, "not a header name"))?;
        let value = HeaderValue::try_from(value.as_str())
            .map_err(|_| err(&header_key, "not a valid header value"))?;
        headers.push((name, value));
    }
    let millis = |v: Option<u64>, default: u64, name: &str| match v.unwrap_or(default) {
        0 => Err(err(&key(name), "must be greater than 0")),
        ms => Ok(Duration::from_millis(ms)),
    };
    Ok(RouteConfig {
        prefix,
        upstream,
        auth,
        headers,
        connect_timeout: millis(
            raw.connect_timeout_ms,
            defaults.connect_timeout_ms,
            "connect_timeout_ms",
        )?,
        read_timeout: millis(
            raw.read_timeout_ms,
            defaults.read_timeout_ms,
            "read_timeout_ms",
        )?,
    })
}

fn http_url(raw: &str, key: &str) -> Result<Url, ConfigError> {
    match Url::parse(raw) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(url),
        _ => Err(err(key, format!("{raw:?} is not an http(s) URL"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ProxyConfig, ConfigError> {
        ProxyConfig::parse(text, Path::new("."), &|name| {
            (name == "SET").then(|| "s3cret".to_owned())
        })
    }

    const GOOD_ROUTE: &str = r#"
[[route]]
prefix = "/payments/"
upstream = "http://127.0.0.1:7000/base"
token_url = "http://127.0.0.1:7000/oauth/token"
client_id = "skybook"
client_secret_env = "SET"
"#;

    #[test]
    fn a_good_config_parses() {
        let config = parse(&format!("listen = \"127.0.0.1:9100\"\n{GOOD_ROUTE}")).unwrap();
        assert_eq!(config.listen.port(), 9100);
        assert_eq!(
            config.routes[0].prefix, "/payments",
            "trailing slash dropped"
        );
        assert!(matches!(
            config.routes[0].auth,
            RouteAuth::ClientCredentials { .. }
        ));
        assert!(
            !format!("{config:?}").contains("s3cret"),
            "secrets never in Debug"
        );
    }

    /// Each mistake is reported as one line that names the key.
    #[test]
    fn every_mistake_names_its_key() {
        let cases = [
            (
                "listen = \"nowhere\"\n".to_owned() + GOOD_ROUTE,
                "invalid listen",
            ),
            ("".to_owned(), "no [[route]]"),
            ("workers = 0\n".to_owned() + GOOD_ROUTE, "invalid workers"),
            (
                GOOD_ROUTE.replace(
                    "upstream = \"http://127.0.0.1:7000/base\"",
                    "upstream = \"ftp://x\"",
                ),
                "route[0].upstream",
            ),
            (
                GOOD_ROUTE.replace(
                    "upstream = \"http://127.0.0.1:7000/base\"",
                    "upstream = \"http://127.0.0.1:7000/base?v=1\"",
                ),
                "route[0].upstream",
            ),
            (
                GOOD_ROUTE.replace(
                    "upstream = \"http://127.0.0.1:7000/base\"",
                    "upstream = \"https://x\"",
                ),
                "route[0].upstream",
            ),
            (
                GOOD_ROUTE.replace("prefix = \"/payments/\"", "prefix = \"payments\""),
                "route[0].prefix",
            ),
            (
                GOOD_ROUTE.replace(
                    "client_secret_env = \"SET\"",
                    "client_secret_env = \"UNSET\"",
                ),
                "route[0].client_secret_env",
            ),
            (
                GOOD_ROUTE.replace("client_id = \"skybook\"\n", ""),
                "missing route[0].client_id",
            ),
            (
                GOOD_ROUTE.replace("client_secret_env = \"SET\"", ""),
                "missing credentials for route[0]",
            ),
            (
                GOOD_ROUTE.to_owned() + "colour = \"blue\"\n",
                "unknown field `colour`",
            ),
            (format!("{GOOD_ROUTE}{GOOD_ROUTE}"), "route[1].prefix"),
            (
                GOOD_ROUTE.replace(
                    "client_secret_env = \"SET\"",
                    "client_secret_file = \"/no/such/file\"",
                ),
                "route[0].client_secret_file",
            ),
            (
                GOOD_ROUTE.to_owned() + "headers = { \"bad header\" = \"x\" }\n",
                "route[0].headers.bad header",
            ),
            (
                GOOD_ROUTE.replace(
                    "client_secret_env = \"SET\"",
                    "private_key_file = \"/no/such/key.pem\"",
                ),
                "route[0].private_key_file",
            ),
            (
                GOOD_ROUTE.to_owned() + "read_timeout_ms = 0\n",
                "route[0].read_timeout_ms",
            ),
        ];
        for (text, expected) in cases {
            let message = parse(&text).expect_err(expected).to_string();
            assert!(
                message.contains(expected),
                "{expected:?} not in {message:?}"
            );
            assert!(!message.contains('\n'), "one line: {message:?}");
            assert!(!message.contains("s3cret"));
        }
    }

    #[test]
    fn a_static_header_route_needs_a_value() {
        let route =
            "[[route]]\nprefix = \"/k\"\nupstream = \"http://h\"\nstatic_header = \"X-Api-Key\"\n";
        assert!(parse(route)
            .unwrap_err()
            .to_string()
            .contains("missing route[0].static_value_env"));
        let ok = parse(&format!("{route}static_value_env = \"SET\"\n")).unwrap();
        assert!(
            matches!(&ok.routes[0].auth, RouteAuth::Static { header, value }
            if header == "x-api-key" && value.is_sensitive())
        );
    }
}
