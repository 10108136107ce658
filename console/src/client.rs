//! The wire: a node's admin API over HTTP, the cluster registry (read through
//! [`crate::registry`] on whichever engine `--bus` names) and, on one Redis, Redis's own
//! figures. Every call is bounded by a timeout; the parsers for Redis's text replies are
//! pure and tested.
//!
//! Registry entries are written by whoever can write to the cluster's Redis, so they
//! are checked ([`verify_entry`]) before the console acts on one: the node id must be
//! one `rtc serve` accepts, the advertise URL an http(s) URL, and, when the console has
//! the admin token, the entry's signature (an HMAC-SHA256 keyed by that token) must
//! verify. The token is sent only to entries that pass, or to URLs the operator gave.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use rtc_model::Engine;

use crate::registry::{Registry, RegistryError};

use crate::model::{self, NodeStats};
use crate::snapshot::{BufferLimit, KeySample, NodeProblem, NodeSample, RedisSample, Subscriber};

/// Longest wait for one admin request: a node slower than this is shown as unreachable
/// rather than stalling the whole poll.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for one round of Redis reads.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// `SCAN` calls per poll when sampling the keyspace for foreign keys.
const SCAN_CALLS: usize = 4;
/// `COUNT` hint per `SCAN` call.
const SCAN_COUNT: usize = 250;

/// Talks to nodes' admin endpoints.
#[derive(Debug, Clone)]
pub struct AdminClient {
    http: reqwest::Client,
    token: Option<String>,
}

impl AdminClient {
    /// A client sending `token` as the bearer admin token.
    ///
    /// # Errors
    /// When the HTTP stack cannot be initialised.
    pub fn new(token: Option<String>) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .connect_timeout(HTTP_TIMEOUT)
            .user_agent(concat!("rtc-console/", env!("CARGO_PKG_VERSION")))
            // The token goes to the URL that was checked, never to wherever it redirects.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot start the HTTP client: {e}"))?;
        Ok(AdminClient { http, token })
    }

    fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// `GET {url}/admin/stats`.
    ///
    /// # Errors
    /// Why the node's stats could not be had, worded for the operator.
    pub async fn fetch_stats(&self, url: &str) -> Result<NodeStats, NodeProblem> {
        let endpoint = format!("{}/admin/stats", url.trim_end_matches('/'));
        let resp = self
            .authorize(self.http.get(&endpoint))
            .send()
            .await
            .map_err(|e| NodeProblem::Unreachable(describe(&e)))?;
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(NodeProblem::Unreachable(
                "401: admin token refused (set --token or RTC_ADMIN_TOKEN)".to_string(),
            ));
        }
        if !status.is_success() {
            return Err(NodeProblem::Unreachable(format!("HTTP {}", status.as_u16())));
        }
        let body = resp.bytes().await.map_err(|e| NodeProblem::Unreachable(describe(&e)))?;
        serde_json::from_slice(&body).map_err(|e| NodeProblem::Undecodable(format!("bad stats JSON: {e}")))
    }

    /// `POST {url}/admin/drain`. Returns the node's answer.
    ///
    /// # Errors
    /// The transport error or the node's refusal, worded for the operator.
    pub async fn request_drain(&self, url: &str) -> Result<String, String> {
        let endpoint = format!("{}/admin/drain", url.trim_end_matches('/'));
        let resp = self.authorize(self.http.post(&endpoint)).send().await.map_err(|e| describe(&e))?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let body = body.trim().chars().take(200).collect::<String>();
        if status.is_success() {
            Ok(if body.is_empty() { format!("HTTP {}", status.as_u16()) } else { body })
        } else {
            Err(format!("HTTP {}: {body}", status.as_u16()))
        }
    }
}

impl AdminClient {
    /// `POST {url}/admin/{what}` with a JSON body; the node's JSON answer or the HTTP
    /// status (None when unreachable) and a message.
    ///
    /// # Errors
    /// The transport error or the node's refusal.
    pub async fn post_admin(
        &self,
        url: &str,
        what: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, (Option<u16>, String)> {
        let endpoint = format!("{}/admin/{what}", url.trim_end_matches('/'));
        let resp =
            self.authorize(self.http.post(&endpoint)).json(body).send().await.map_err(|e| (None, describe(&e)))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status.is_success() {
            Ok(serde_json::from_str(&text).unwrap_or_default())
        } else {
            Err((
                Some(status.as_u16()),
                format!("HTTP {}: {}", status.as_u16(), text.chars().take(200).collect::<String>()),
            ))
        }
    }

    /// `POST {url}/admin/drain` with a JSON body of overrides; see [`Self::post_admin`].
    ///
    /// # Errors
    /// The transport error or the node's refusal (its JSON `error` text when it has one).
    pub async fn request_drain_with(
        &self,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, (Option<u16>, String)> {
        self.post_admin(url, "drain", body).await
    }
}

/// A short reason for a transport error (reqwest's own text repeats the URL).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("no answer within {}s", HTTP_TIMEOUT.as_secs())
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        e.to_string()
    }
}

/// Whether `id` is a node id `rtc serve` accepts: 1-64 characters of A-Z a-z 0-9 - _ .
pub fn valid_node_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A value read from the registry made safe to print: control characters and quotes
/// escaped, at most 64 characters.
pub fn printable(value: &str) -> String {
    let escaped: String = value.escape_debug().collect();
    if escaped.chars().count() > 64 {
        format!("{}…", escaped.chars().take(63).collect::<String>())
    } else {
        escaped
    }
}

/// The text a registry entry's signature covers (the node builds the same): cluster,
/// node id, boot id and advertise URL, each length-prefixed.
fn registry_signed_text(cluster: &str, s: &NodeStats) -> String {
    let mut text = String::from("rtc-registry-v1");
    for field in [cluster, &s.node_id, &s.boot_id, &s.advertise_url] {
        text.push_str(&format!("\n{}:{field}", field.len()));
    }
    text
}

/// Checks a registry entry of `cluster`, registered under `registered_id`, before the
/// console shows it as a node, sends it the admin token, drains, cordons or restarts it.
/// Without a token the signature cannot be checked (and there is no token to leak):
/// only the id and URL are.
///
/// # Errors
/// Why the entry is not trusted, worded for the operator (registry values escaped).
pub fn verify_entry(cluster: &str, registered_id: &str, s: &NodeStats, token: Option<&str>) -> Result<(), String> {
    use hmac::Mac;
    if !valid_node_id(registered_id) {
        return Err(format!("'{}' is not a node id (1-64 of A-Z a-z 0-9 - _ .)", printable(registered_id)));
    }
    if s.node_id != registered_id {
        return Err(format!("registered as '{registered_id}' but its entry names '{}'", printable(&s.node_id)));
    }
    let url_ok = reqwest::Url::parse(&s.advertise_url)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()));
    if !url_ok {
        return Err(format!("advertise_url '{}' is not an http(s) URL", printable(&s.advertise_url)));
    }
    let Some(token) = token else { return Ok(()) };
    if s.registry_sig.is_empty() {
        return Err("unsigned entry (forged, or written by an rtc older than this console)".to_string());
    }
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(token.as_bytes())
        .map_err(|_| "cannot key the signature check".to_string())?;
    mac.update(registry_signed_text(cluster, s).as_bytes());
    let sig = hex::decode(&s.registry_sig).unwrap_or_default();
    // Constant-time comparison.
    mac.verify_slice(&sig)
        .map_err(|_| "signature does not verify with the admin token (forged entry, or another token)".to_string())
}

/// Reads the registry (on the engine `--bus` names) and, on one Redis, Redis's own
/// figures for one cluster.
pub struct RegistryReader {
    url: String,
    engine: Engine,
    cluster: String,
    conn: Option<Registry>,
    token: Option<String>,
}

impl RegistryReader {
    /// A reader for `cluster` at the engine URL `url` (not yet connected).
    ///
    /// # Errors
    /// When the URL is not an engine URL.
    pub fn new(url: &str, cluster: &str) -> Result<Self, String> {
        let engine = match rtc_model::bus::check_url(url) {
            Ok(Engine::Redis) => {
                redis::Client::open(url).map_err(|e| format!("'{}' is not a Redis URL: {e}", redact_url(url)))?;
                Engine::Redis
            }
            Ok(Engine::RedisCluster) => {
                crate::registry::cluster_seeds(url)?;
                Engine::RedisCluster
            }
            Ok(e) => e,
            Err(e) => return Err(e),
        };
        Ok(RegistryReader { url: url.to_string(), engine, cluster: cluster.to_string(), conn: None, token: None })
    }

    /// Checks every entry's signature against `token` (see [`verify_entry`]).
    pub fn verifying(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// One poll: the nodes (from the registry) and the engine's figures. On failure the
    /// connection is dropped and re-opened next time; the sample carries the error.
    pub async fn read(&mut self) -> (Vec<NodeSample>, RedisSample) {
        let failed = |engine, e: String| (Vec::new(), RedisSample { engine, error: Some(e), ..RedisSample::default() });
        // A cluster client or a NATS connection takes more round trips to open.
        let limit = if self.engine == Engine::Redis { REDIS_TIMEOUT } else { REDIS_TIMEOUT * 2 };
        match tokio::time::timeout(limit, self.read_inner()).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                self.conn = None;
                failed(self.engine, e.text)
            }
            Err(_) => {
                self.conn = None;
                failed(self.engine, format!("no answer within {}s", limit.as_secs()))
            }
        }
    }

    async fn read_inner(&mut self) -> Result<(Vec<NodeSample>, RedisSample), RegistryError> {
        let conn = match &mut self.conn {
            Some(c) => c,
            None => self.conn.insert(Registry::connect(&self.url).await?),
        };
        let entries = conn.entries(&self.cluster, self.token.as_deref()).await?;
        let figures = match conn {
            Registry::Redis(c) => Some(read_redis_figures(c).await?),
            _ => None,
        };
        let expired: Vec<&String> =
            entries.iter().filter(|(_, e)| matches!(e, Err(NodeProblem::Expired))).map(|(id, _)| id).collect();
        let mut exits = conn.exit_markers(&self.cluster, &expired).await?;
        let timeline = conn.timeline(&self.cluster, TIMELINE_ENTRIES).await?;
        let subscribers = figures.as_ref().map_or(&[][..], |f| f.subscribers.as_slice());

        let mut matched: Vec<String> = Vec::new();
        let nodes: Vec<NodeSample> = entries
            .into_iter()
            .map(|(id, entry)| {
                let (stats, problem) = match entry {
                    Ok(s) => (Some(s), None),
                    Err(p) => (None, Some(p)),
                };
                // An id that is not a node id is shown escaped, never as written.
                let id = if valid_node_id(&id) { id } else { printable(&id) };
                let name = stats
                    .as_ref()
                    .and_then(|s| s.pubsub.as_ref())
                    .map(|p| p.client_name.clone())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| subscriber_name(&self.cluster, &id));
                let pubsub_omem = subscribers.iter().find(|c| c.name == name).map(|c| c.omem);
                matched.push(name);
                let url = stats.as_ref().map(|s| s.advertise_url.clone()).filter(|u| !u.is_empty());
                let exit = exits.remove(&id);
                NodeSample { id, url, stats, problem, pubsub_omem, exit, ..NodeSample::default() }
            })
            .collect();
        let presence_users = conn.presence_users(&self.cluster, &nodes).await?;
        let other_clusters = if nodes.is_empty() { conn.find_clusters().await? } else { Vec::new() };
        let mut sample = RedisSample {
            engine: conn.engine(),
            timeline: timeline.clone().unwrap_or_default(),
            presence_users,
            other_clusters,
            ..RedisSample::default()
        };
        if timeline.is_none() {
            sample.not_available.push(crate::snapshot::NOT_AVAILABLE_TIMELINE);
        }
        match figures {
            Some(f) => {
                sample.version = f.version;
                sample.used_memory = f.used_memory;
                sample.pubsub_clients = f.subscribers.len() as u64;
                sample.pubsub_limit = f.limit;
                sample.keyspace = f.keyspace;
                sample.other_subscribers = unmatched_subscribers(&f.subscribers, &matched);
            }
            None => sample.not_available.extend(crate::snapshot::NOT_AVAILABLE_REDIS_FIGURES),
        }
        Ok((nodes, sample))
    }
}

/// Redis's own figures (one Redis only).
struct RedisFigures {
    subscribers: Vec<ClientEntry>,
    limit: Option<BufferLimit>,
    version: String,
    used_memory: u64,
    keyspace: KeySample,
}

async fn read_redis_figures(conn: &mut MultiplexedConnection) -> redis::RedisResult<RedisFigures> {
    let client_list: String = redis::cmd("CLIENT").arg("LIST").arg("TYPE").arg("pubsub").query_async(conn).await?;
    // CONFIG is often disabled on managed Redis: an unknown limit, not an error.
    let limit: Option<BufferLimit> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("client-output-buffer-limit")
        .query_async::<Vec<String>>(conn)
        .await
        .ok()
        .and_then(|v| v.get(1).and_then(|s| parse_pubsub_limit(s)));
    let info_server: String = redis::cmd("INFO").arg("server").query_async(conn).await?;
    let info_memory: String = redis::cmd("INFO").arg("memory").query_async(conn).await?;
    Ok(RedisFigures {
        subscribers: parse_client_list(&client_list),
        limit,
        version: info_field(&info_server, "redis_version").unwrap_or_default().to_string(),
        used_memory: info_field(&info_memory, "used_memory").and_then(|v| v.parse().ok()).unwrap_or(0),
        keyspace: sample_keys(conn).await?,
    })
}

/// A bounded `SCAN`: enough to notice a cache or queue sharing this Redis.
async fn sample_keys(conn: &mut MultiplexedConnection) -> redis::RedisResult<KeySample> {
    let mut sample = KeySample::default();
    let mut cursor: u64 = 0;
    for _ in 0..SCAN_CALLS {
        let (next, keys): (u64, Vec<String>) =
            redis::cmd("SCAN").arg(cursor).arg("COUNT").arg(SCAN_COUNT).query_async(conn).await?;
        sample.scanned += keys.len() as u64;
        for k in keys.into_iter().filter(|k| !k.starts_with("rtc:")) {
            sample.foreign += 1;
            if sample.examples.len() < 3 {
                sample.examples.push(k.chars().take(40).collect());
            }
        }
        cursor = next;
        if cursor == 0 {
            sample.complete = true;
            break;
        }
    }
    Ok(sample)
}

/// A Redis error for the operator: a reply that does not parse means the port speaks
/// another protocol.
pub fn describe_redis(e: &redis::RedisError) -> String {
    if e.kind() == redis::ErrorKind::ParseError {
        format!("that port does not answer in Redis's protocol (an HTTP port? a TLS one?): {e}")
    } else {
        e.to_string()
    }
}

/// Timeline entries read per poll.
pub const TIMELINE_ENTRIES: usize = 50;

/// One stream entry: `1700000000000-0` and `[node, n1, kind, started, detail, …]`.
pub fn timeline_entry(id: &str, fields: &[String]) -> model::TimelineEntry {
    let mut e = model::TimelineEntry {
        ts_ms: id.split('-').next().and_then(|t| t.parse().ok()).unwrap_or(0),
        ..model::TimelineEntry::default()
    };
    for kv in fields.chunks(2) {
        if let [k, v] = kv {
            match k.as_str() {
                "node" => e.node.clone_from(v),
                "kind" => e.kind.clone_from(v),
                "detail" => e.detail.clone_from(v),
                _ => {}
            }
        }
    }
    e
}

/// Subscribers whose name is none of `matched` (the registered nodes' subscribers).
pub fn unmatched_subscribers(list: &[ClientEntry], matched: &[String]) -> Vec<Subscriber> {
    list.iter()
        .filter(|c| !matched.contains(&c.name))
        .map(|c| Subscriber { name: c.name.clone(), addr: c.addr.clone(), omem: c.omem })
        .collect()
}

/// The conventional `CLIENT SETNAME` of a node's subscriber connection.
pub fn subscriber_name(cluster: &str, node_id: &str) -> String {
    format!("rtc:{cluster}:{node_id}:sub")
}

/// One `CLIENT LIST` entry, the fields the console needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientEntry {
    /// `name=`.
    pub name: String,
    /// `omem=`: output buffer memory, bytes.
    pub omem: u64,
    /// `addr=`: the client's address.
    pub addr: String,
}

/// Parses `CLIENT LIST` output (one client per line, `key=value` fields).
pub fn parse_client_list(text: &str) -> Vec<ClientEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut entry = ClientEntry { name: String::new(), omem: 0, addr: String::new() };
            for field in line.split_whitespace() {
                if let Some(v) = field.strip_prefix("name=") {
                    entry.name = v.to_string();
                } else if let Some(v) = field.strip_prefix("addr=") {
                    entry.addr = v.to_string();
                } else if let Some(v) = field.strip_prefix("omem=") {
                    entry.omem = v.parse().unwrap_or(0);
                }
            }
            entry
        })
        .collect()
}

/// Parses the `pubsub` class out of `client-output-buffer-limit`'s value
/// (`normal 0 0 0 replica 268435456 67108864 60 pubsub 33554432 8388608 60`).
pub fn parse_pubsub_limit(value: &str) -> Option<BufferLimit> {
    let tokens: Vec<&str> = value.split_whitespace().collect();
    let at = tokens.iter().position(|t| t.eq_ignore_ascii_case("pubsub"))?;
    let hard = parse_size(tokens.get(at + 1)?)?;
    let soft = parse_size(tokens.get(at + 2)?)?;
    let secs = tokens.get(at + 3)?.parse().ok()?;
    Some(BufferLimit { hard_bytes: hard, soft_bytes: soft, soft_secs: secs })
}

/// Redis memory sizes: plain bytes or with a `kb`/`mb`/`gb` (1024) or `k`/`m`/`g` (1000) suffix.
fn parse_size(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let split = lower.find(|c: char| !c.is_ascii_digit()).unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult = match unit {
        "" | "b" => 1,
        "k" => 1_000,
        "kb" => 1_024,
        "m" => 1_000_000,
        "mb" => 1_024 * 1_024,
        "g" => 1_000_000_000,
        "gb" => 1_024 * 1_024 * 1_024,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// A field of `INFO` output (`key:value` lines).
pub fn info_field<'a>(info: &'a str, key: &str) -> Option<&'a str> {
    info.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.trim())
    })
}

/// An engine URL with any password replaced, for messages and headers.
pub fn redact_url(url: &str) -> String {
    rtc_model::bus::redact_url(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_list_finds_named_subscribers() {
        let text = "id=5 addr=127.0.0.1:5000 laddr=127.0.0.1:6379 fd=8 name=rtc:prod:node-1:sub age=9 \
                    idle=0 flags=P db=0 sub=1 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 \
                    multi-mem=0 obl=0 oll=3 omem=1048576 tot-mem=1070000 events=rw cmd=subscribe user=default\n\
                    id=6 addr=127.0.0.1:5001 fd=9 name= age=1 flags=P omem=0 cmd=subscribe\n";
        let list = parse_client_list(text);
        assert_eq!(list.len(), 2);
        assert_eq!(
            list[0],
            ClientEntry { name: "rtc:prod:node-1:sub".into(), omem: 1_048_576, addr: "127.0.0.1:5000".into() }
        );
        let other = unmatched_subscribers(&list, &["rtc:prod:node-1:sub".to_string()]);
        assert_eq!(other, vec![Subscriber { name: String::new(), addr: "127.0.0.1:5001".into(), omem: 0 }]);
        assert_eq!(list[1].name, "");
    }

    #[test]
    fn pubsub_limit_is_parsed_from_config_value() {
        let v = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60";
        assert_eq!(
            parse_pubsub_limit(v),
            Some(BufferLimit { hard_bytes: 33_554_432, soft_bytes: 8_388_608, soft_secs: 60 })
        );
        assert_eq!(parse_pubsub_limit("pubsub 32mb 8mb 60").map(|l| l.hard_bytes), Some(33_554_432));
        assert_eq!(parse_pubsub_limit("normal 0 0 0"), None);
        assert_eq!(BufferLimit::default().effective(), None);
    }

    #[test]
    fn registry_entries_are_checked_before_they_are_trusted() {
        let token = "local-admin-token-0123456789";
        let mut s = NodeStats {
            node_id: "node-1".into(),
            boot_id: "b1".into(),
            cluster: "prod".into(),
            advertise_url: "http://10.0.0.5:8080".into(),
            ..NodeStats::default()
        };
        assert_eq!(verify_entry("prod", "node-1", &s, None), Ok(()));
        let err = verify_entry("prod", "node-1", &s, Some(token)).unwrap_err();
        assert!(err.contains("unsigned"), "{err}");
        let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(token.as_bytes()).unwrap();
        hmac::Mac::update(&mut mac, registry_signed_text("prod", &s).as_bytes());
        s.registry_sig = hex::encode(hmac::Mac::finalize(mac).into_bytes());
        assert_eq!(verify_entry("prod", "node-1", &s, Some(token)), Ok(()));
        assert!(verify_entry("prod", "node-1", &s, Some("another-token-0123456789")).is_err());
        assert!(verify_entry("other", "node-1", &s, Some(token)).is_err(), "signed for its cluster");
        let moved = NodeStats { advertise_url: "http://10.6.6.6:8080".into(), ..s.clone() };
        assert!(verify_entry("prod", "node-1", &moved, Some(token)).unwrap_err().contains("does not verify"));
        let evil = "0;touch${IFS}PWNED;#";
        let forged = NodeStats { node_id: evil.into(), ..s.clone() };
        assert!(verify_entry("prod", evil, &forged, None).unwrap_err().contains("is not a node id"));
        assert!(verify_entry("prod", "node-2", &s, None).unwrap_err().contains("registered as 'node-2'"));
        for url in ["", "file:///etc/passwd", "10.0.0.5:8080", "http://", "javascript:alert(1)"] {
            let bad = NodeStats { advertise_url: url.into(), ..s.clone() };
            assert!(verify_entry("prod", "node-1", &bad, None).unwrap_err().contains("advertise_url"), "{url}");
        }
        assert_eq!(printable("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert!(printable(&"x".repeat(100)).chars().count() <= 64);
    }

    #[test]
    fn info_fields_and_redaction() {
        let info = "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\n";
        assert_eq!(info_field(info, "used_memory"), Some("1048576"));
        assert_eq!(info_field(info, "nope"), None);
        assert_eq!(redact_url("redis://:hunter2@db:6379/0"), "redis://:***@db:6379/0");
        assert_eq!(redact_url("redis://app:pw@db"), "redis://app:***@db");
        assert_eq!(redact_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
