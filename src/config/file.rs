//! The TOML file as written by users: every field optional, unknown keys refused.

use std::path::PathBuf;

use serde::Deserialize;

use crate::logging::LogFormat;
use crate::protocol::ClientEvents;

/// The whole `rtc.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[server]`.
    #[serde(default)]
    pub server: ServerSection,
    /// `[[apps]]`.
    #[serde(default)]
    pub apps: Vec<AppSection>,
    /// `[drain]`: how the node sheds its sockets on SIGTERM or `rtc drain`.
    #[serde(default)]
    pub drain: DrainSection,
    /// `[cluster]`: this node's cluster membership.
    #[serde(default)]
    pub cluster: ClusterSection,
    /// `[clusters.NAME]`: clusters the console operates (read by `rtc top`, `status`,
    /// `drain`, `roll`; ignored by `rtc serve`).
    #[serde(default)]
    pub clusters: Option<toml::Table>,
}

/// `[drain]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrainSection {
    /// Seconds before the first hint.
    pub pre_drain_delay: Option<f64>,
    /// Seconds over which hints are spread.
    pub window: Option<f64>,
    /// Hints per second cap (0 = none).
    pub rate: Option<u64>,
    /// Seconds until the forced close and exit.
    pub timeout: Option<f64>,
    /// Presence grace for migrating users (s).
    pub presence_grace: Option<f64>,
    /// Send `pusher:error` 4200 before each close frame.
    pub send_error: Option<bool>,
}

/// `[cluster]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// Cluster name.
    pub name: Option<String>,
    /// Redis URL.
    pub redis_url: Option<String>,
    /// Engine URL (`redis://`, `redis-cluster://`, `nats://`).
    pub bus: Option<String>,
    /// Advertised base URL.
    pub advertise_url: Option<String>,
    /// Planning line (connections per node).
    pub planning_line: Option<u64>,
    /// Seconds after which a silent node counts as dead.
    pub node_ttl: Option<u64>,
    /// Shared secret authenticating bus messages (HMAC-SHA256).
    pub secret: Option<String>,
}

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Listen address.
    pub host: Option<String>,
    /// Listen port.
    pub port: Option<u16>,
    /// Route prefix.
    pub path: Option<String>,
    /// Largest HTTP body.
    pub max_request_size: Option<usize>,
    /// Admin token.
    pub admin_token: Option<String>,
    /// Node id.
    pub node_id: Option<String>,
    /// Log format.
    pub log_format: Option<LogFormat>,
    /// Per-socket outbound queue limit in bytes.
    pub outbound_queue_bytes: Option<usize>,
    /// New WebSocket connections accepted per second by this node (0 = no limit).
    pub max_new_connections_per_sec: Option<u32>,
    /// Fan-out budget, milliseconds.
    pub fanout_budget_ms: Option<u64>,
    /// PEM certificate chain: serve TLS (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Seconds to send a complete request head (also the keep-alive idle timeout).
    pub header_timeout: Option<f64>,
    /// Seconds to send a whole request body.
    pub body_timeout: Option<f64>,
    /// Open connections this node holds (0 = no cap; default: open-file limit − reserve).
    pub connection_limit: Option<usize>,
    /// Open connections per client address (0 = no cap).
    pub max_connections_per_address: Option<usize>,
    /// New WebSocket connections per client address per second (0 = no limit).
    pub max_new_connections_per_address_per_sec: Option<u32>,
    /// Proxies whose `X-Forwarded-For` is believed (IPs or CIDR ranges).
    pub trusted_proxies: Option<Vec<String>>,
}

/// One `[[apps]]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSection {
    /// App id (the `/apps/{id}` in HTTP API paths).
    pub id: Option<String>,
    /// App key (the `/app/{key}` in WebSocket URLs).
    pub key: Option<String>,
    /// App secret.
    pub secret: Option<String>,
    /// Whether the app accepts connections and API calls.
    pub enabled: Option<bool>,
    /// Allowed `Origin` values (`*` wildcards).
    pub allowed_origins: Option<Vec<String>>,
    /// Who may send client events.
    pub client_events: Option<ClientEvents>,
    /// Connection quota (0 = unlimited).
    pub max_connections: Option<u64>,
    /// Advertised activity timeout (s).
    pub activity_timeout: Option<u64>,
    /// Server ping after this much silence (s).
    pub ping_interval: Option<u64>,
    /// Seconds to wait for a pong before closing with 4201.
    pub pong_timeout: Option<u64>,
    /// Sign-in deadline (s, 0 = off).
    pub require_signin_within: Option<u64>,
    /// Send `pusher_internal:subscription_count`.
    pub subscription_count: Option<bool>,
    /// Largest client WebSocket message (bytes).
    pub max_message_size: Option<usize>,
    /// Largest event `data` (bytes).
    pub max_event_data_size: Option<usize>,
    /// Client events per socket per second.
    pub client_event_rate: Option<u32>,
    /// Members per presence channel.
    pub max_presence_members: Option<usize>,
    /// Bytes of presence `user_info`.
    pub max_presence_user_info: Option<usize>,
    /// Characters of a user id.
    pub max_user_id_length: Option<usize>,
    /// Channels one socket may join.
    pub max_channels_per_socket: Option<usize>,
    /// Channels in one HTTP publish.
    pub max_channels_per_publish: Option<usize>,
    /// Events in one batch.
    pub max_batch_size: Option<usize>,
    /// Watchlist events on/off.
    pub watchlist: Option<bool>,
    /// Ids in one watchlist.
    pub max_watchlist_size: Option<usize>,
    /// Cache channel TTL (s).
    pub cache_ttl: Option<u64>,
    /// HTTP API requests per second (0 = no limit).
    pub max_api_requests_per_sec: Option<u32>,
    /// Subscribe + unsubscribe frames per socket per second (bursts up to twice that).
    pub subscribe_rate: Option<u32>,
    /// Incoming frames per socket per second (bursts up to twice that).
    pub frame_rate: Option<u32>,
    /// Webhook endpoints: `[{ url = "https://…", events = ["channel_occupied", …] }]`.
    pub webhooks: Option<Vec<WebhookSection>>,
    /// Batch webhook events (up to 50 per POST, collected for 50 ms).
    pub webhook_batch: Option<bool>,
    /// Seconds a failed webhook POST is retried (0 = no retries).
    pub webhook_retry_for: Option<u64>,
}

/// One entry of an app's `webhooks` list.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    /// Endpoint URL (http or https).
    pub url: Option<String>,
    /// Event names sent to it (all when absent).
    pub events: Option<Vec<String>>,
}
