//! What one socket may do: the protocol logic behind each client frame. Replies go
//! through the socket's own outbox so they stay in order with fan-out frames.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant;

use super::app::{App, Origin, PresenceIdentity, SubscribeError};
use super::conn_handle::ConnHandle;
use super::rate::{Budget, Spend};
use super::{Frame, Node};
use crate::protocol::auth::{self, AuthError};
use crate::protocol::channel::ChannelKind;
use crate::protocol::frame::{self, ClientFrame};
use crate::protocol::ClientEvents;
use crate::protocol::{ChannelName, CloseCode};

/// `pusher:error` code for a rejected client event (Pusher: rate limit; Soketi uses it
/// for every client-event refusal).
pub const CLIENT_EVENT_REJECTED: u16 = 4301;
/// `pusher:error` code when a watchlist is longer than the limit (the rest is dropped).
pub const WATCHLIST_TOO_LONG: u16 = 4302;

/// A token bucket: `rate` events per second, bursts up to `rate`.
struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: u32) -> Self {
        TokenBucket { rate: rate as f64, tokens: rate as f64, last: Instant::now() }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The per-socket budgets.
#[derive(Clone, Copy)]
enum BudgetKind {
    Frames,
    Subscribes,
}

impl BudgetKind {
    fn limit(self) -> &'static str {
        match self {
            BudgetKind::Frames => "frame_rate",
            BudgetKind::Subscribes => "subscribe_rate",
        }
    }

    fn what(self) -> &'static str {
        match self {
            BudgetKind::Frames => "Message",
            BudgetKind::Subscribes => "Subscribe/unsubscribe",
        }
    }
}

/// The protocol state of one socket.
pub struct Session {
    node: Arc<Node>,
    app: Arc<App>,
    handle: Arc<ConnHandle>,
    /// Channels joined, with the presence user id where there is one.
    subscriptions: HashMap<ChannelName, Option<Arc<str>>>,
    client_events: TokenBucket,
    /// Every incoming frame (`frame_rate`).
    frames: Option<Budget>,
    /// Subscribes and unsubscribes (`subscribe_rate`).
    subscribes: Option<Budget>,
    /// Set once a budget is exhausted and the close is requested: later frames are
    /// dropped unread.
    closing: bool,
    /// Signed in, or joined a private/presence channel (for `require_signin_within`).
    authorized: bool,
}

fn presence_identity(channel_data: &str, max_id: usize, max_info: usize) -> Result<PresenceIdentity, String> {
    let m = crate::protocol::presence::parse_channel_data(channel_data, max_id, max_info)?;
    Ok(PresenceIdentity { user_id: Arc::from(m.user_id), info: Arc::from(m.info) })
}

impl Session {
    /// A session for a registered connection.
    pub fn new(node: Arc<Node>, app: Arc<App>, handle: Arc<ConnHandle>) -> Self {
        let rate = app.config.client_event_rate;
        let c = &app.config;
        // A client subscribes to all its channels at connect: both bursts always cover
        // twice max_channels_per_socket.
        let channels = u32::try_from(c.max_channels_per_socket).unwrap_or(u32::MAX);
        let frames = Budget::new(c.frame_rate, c.frame_rate.saturating_mul(2).max(channels.saturating_mul(2)));
        let subscribes =
            Budget::new(c.subscribe_rate, c.subscribe_rate.saturating_mul(2).max(channels.saturating_mul(2)));
        Session {
            node,
            app,
            handle,
            subscriptions: HashMap::new(),
            client_events: TokenBucket::new(rate),
            frames,
            subscribes,
            closing: false,
            authorized: false,
        }
    }

    /// Whether the socket has signed in or joined an authenticated channel.
    pub fn authorized(&self) -> bool {
        self.authorized
    }

    fn send(&self, f: String) {
        self.send_frame(Frame::from(f));
    }

    fn send_frame(&self, f: Frame) {
        self.node.metrics.frames_out.inc();
        self.node.metrics.bytes_out.inc_by(f.len() as u64);
        self.handle.push(f);
    }

    fn pong(&self) {
        self.node.metrics.pongs.inc();
        self.send_frame(Frame::from_static(frame::PONG));
    }

    fn error(&self, kind: &str, code: Option<u16>, message: &str) {
        self.node.metrics.protocol_error(kind);
        self.send(frame::error_frame(code, message));
    }

    /// Charges one frame to `budget`; false when the frame must be dropped. Sends
    /// `pusher:error` 4301 (at most once a second) while over, and asks for a close
    /// with 4100 (pusher-js retries after 1 s) once the budget is exhausted.
    fn spend(&mut self, which: BudgetKind) -> bool {
        if self.closing {
            return false;
        }
        let budget = match which {
            BudgetKind::Frames => self.frames.as_mut(),
            BudgetKind::Subscribes => self.subscribes.as_mut(),
        };
        let Some(budget) = budget else { return true };
        let rate = budget.rate();
        match budget.take() {
            Spend::Ok => true,
            Spend::Refused { notify } => {
                self.node.metrics.limit_hit(which.limit());
                if notify {
                    self.error(
                        which.limit(),
                        Some(CLIENT_EVENT_REJECTED),
                        &format!("{} rejected due to rate limit ({rate} per second)", which.what()),
                    );
                }
                false
            }
            Spend::Exhausted => {
                self.node.metrics.limit_hit(which.limit());
                self.closing = true;
                self.handle.close(
                    CloseCode::OverCapacity,
                    format!("{} kept exceeding the rate limit ({rate} per second)", which.what()),
                );
                false
            }
        }
    }

    /// Charges a WebSocket ping or pong frame to the frame budget.
    pub fn handle_control(&mut self) {
        let _ = self.spend(BudgetKind::Frames);
    }

    /// Handles one text frame.
    pub fn handle_text(&mut self, text: &str) {
        if !self.spend(BudgetKind::Frames) {
            return;
        }
        if text == frame::PUSHER_JS_PING {
            return self.pong();
        }
        if text.len() > self.app.config.max_message_size {
            self.node.metrics.limit_hit("max_message_size");
            self.error(
                "message_too_large",
                None,
                &format!("Message too large: {} bytes; the limit is {}", text.len(), self.app.config.max_message_size),
            );
            return;
        }
        match frame::parse_client_frame(text) {
            Ok(f) => self.handle_frame(f),
            Err(e) => self.error("bad_frame", None, &e.to_string()),
        }
    }

    /// Answers a binary frame (not part of the protocol).
    pub fn handle_binary(&mut self) {
        if !self.spend(BudgetKind::Frames) {
            return;
        }
        self.error("binary_frame", None, "Binary frames are not supported; send JSON text frames");
    }

    fn handle_frame(&mut self, f: ClientFrame) {
        match f {
            ClientFrame::Ping => self.pong(),
            ClientFrame::Pong => {
                self.node.metrics.pongs.inc();
            }
            ClientFrame::Subscribe { .. } | ClientFrame::Unsubscribe { .. } if !self.spend(BudgetKind::Subscribes) => {}
            ClientFrame::Subscribe { channel, auth, channel_data } => {
                self.subscribe(&channel, auth.as_deref(), channel_data.as_deref())
            }
            ClientFrame::Unsubscribe { channel } => {
                if let Ok(name) = ChannelName::parse(&channel) {
                    if let Some(user) = self.subscriptions.remove(&name) {
                        self.app.unsubscribe(&self.handle, &name, user.as_ref());
                    }
                }
            }
            ClientFrame::Signin { auth, user_data } => self.signin(&auth, &user_data),
            ClientFrame::ClientEvent { event, channel, data } => self.client_event(&event, &channel, &data),
        }
    }

    fn auth_failed(&self, kind: &str, channel: Option<&str>, e: &AuthError) {
        self.node.metrics.auth_failure(kind);
        self.error("auth", None, &e.to_string());
        if let Some(c) = channel {
            self.send(frame::subscription_error(c, &e.to_string(), 401));
        }
    }

    fn subscribe(&mut self, channel: &str, auth: Option<&str>, channel_data: Option<&str>) {
        let name = match ChannelName::parse(channel) {
            Ok(n) => n,
            Err(e) => return self.error("bad_channel", None, &format!("Invalid channel name: {e}")),
        };
        if self.subscriptions.contains_key(&name) {
            // A cluster-wide presence refusal undoes a subscription after the fact: then
            // the socket may subscribe again.
            if self.app.is_subscribed(&name, self.handle.socket_id) {
                return self.error("duplicate_subscribe", None, &format!("Existing subscription to channel {name}"));
            }
            self.subscriptions.remove(&name);
        }
        if self.subscriptions.len() >= self.app.config.max_channels_per_socket {
            // Subscriptions the cluster refused after the fact take no place.
            let (app, id) = (&self.app, self.handle.socket_id);
            self.subscriptions.retain(|n, _| app.is_subscribed(n, id));
        }
        if self.subscriptions.len() >= self.app.config.max_channels_per_socket {
            self.node.metrics.limit_hit("max_channels_per_socket");
            return self.error(
                "too_many_channels",
                None,
                &format!(
                    "Subscription limit reached: {} channels per connection",
                    self.app.config.max_channels_per_socket
                ),
            );
        }
        let kind = name.kind();
        let socket_id = self.handle.socket_id.to_string();
        let mut presence = None;
        match kind {
            ChannelKind::Public => {}
            ChannelKind::ServerToUser => {
                if self.handle.user_id.get().map(String::as_str) != name.server_to_user_id() {
                    self.error("auth", None, &format!("Subscription to {name} requires signing in as that user"));
                    return self.send(frame::subscription_error(name.as_str(), "Not signed in as this user", 403));
                }
            }
            ChannelKind::Private | ChannelKind::PrivateEncrypted | ChannelKind::Presence => {
                self.node.metrics.auth_requests.inc();
                let Some(auth) = auth else {
                    let e = AuthError::Malformed;
                    return self.auth_failed("channel", Some(name.as_str()), &e);
                };
                let data = if kind == ChannelKind::Presence {
                    match channel_data {
                        Some(d) => Some(d),
                        None => {
                            return self.error("bad_channel_data", None, "Presence subscriptions need channel_data")
                        }
                    }
                } else {
                    None
                };
                let to_sign = auth::channel_string_to_sign(&socket_id, name.as_str(), data);
                if let Err(e) = auth::verify_auth(&self.app.config.key, self.app.config.secret.expose(), auth, &to_sign)
                {
                    return self.auth_failed("channel", Some(name.as_str()), &e);
                }
                if let Some(d) = data {
                    match presence_identity(
                        d,
                        self.app.config.max_user_id_length,
                        self.app.config.max_presence_user_info,
                    ) {
                        Ok(p) => presence = Some(p),
                        Err(msg) => {
                            self.error("bad_channel_data", None, &msg);
                            return self.send(frame::subscription_error(name.as_str(), &msg, 400));
                        }
                    }
                }
                self.authorized = true;
            }
        }
        let user = presence.as_ref().map(|p| p.user_id.clone());
        match self.app.subscribe(&self.handle, &name, presence) {
            Ok(_) => {
                self.subscriptions.insert(name, user);
            }
            Err(e @ SubscribeError::PresenceFull(_)) => {
                self.node.metrics.limit_hit("max_presence_members");
                self.error("presence_full", None, &e.to_string());
                self.send(frame::subscription_error(name.as_str(), &e.to_string(), 4100));
            }
        }
    }

    fn signin(&mut self, auth: &str, user_data: &str) {
        let socket_id = self.handle.socket_id.to_string();
        let to_sign = auth::user_string_to_sign(&socket_id, user_data);
        if let Err(e) = auth::verify_auth(&self.app.config.key, self.app.config.secret.expose(), auth, &to_sign) {
            return self.auth_failed("user", None, &e);
        }
        let v: serde_json::Value = match serde_json::from_str(user_data) {
            Ok(v) => v,
            Err(_) => return self.error("bad_user_data", None, "Invalid user_data: not JSON"),
        };
        let id = match v.get("id") {
            Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return self.error("bad_user_data", None, "Invalid user_data: 'id' must be a non-empty string"),
        };
        if id.chars().count() > self.app.config.max_user_id_length {
            return self.error(
                "bad_user_data",
                None,
                &format!("Invalid user_data: id longer than {} characters", self.app.config.max_user_id_length),
            );
        }
        if let Some(existing) = self.handle.user_id.get() {
            if *existing != id {
                return self.error("signin_other_user", None, "This connection is already signed in as another user");
            }
            self.send(frame::signin_success(user_data));
            return;
        }
        let mut watchlist: Vec<String> = match v.get("watchlist") {
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|x| match x {
                    serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let max = self.app.config.max_watchlist_size;
        let _ = self.handle.user_id.set(id.clone());
        self.authorized = true;
        self.send(frame::signin_success(user_data));
        if watchlist.len() > max {
            watchlist.truncate(max);
            self.node.metrics.limit_hit("max_watchlist_size");
            self.error(
                "watchlist_too_long",
                Some(WATCHLIST_TOO_LONG),
                &format!("Watchlist limit exceeded: only the first {max} ids are watched"),
            );
        }
        self.app.sign_in(&self.handle, &id, &watchlist);
    }

    fn client_event(&mut self, event: &str, channel: &str, data: &str) {
        let arrival = std::time::Instant::now();
        let reject = |s: &Self, why: &str| {
            s.node.metrics.limit_hit("client_event_rejected");
            s.error("client_event", Some(CLIENT_EVENT_REJECTED), why);
        };
        if self.app.config.client_events == ClientEvents::Off {
            return reject(self, "Client event rejected: the app does not have client messaging enabled");
        }
        let name = match ChannelName::parse(channel) {
            Ok(n) => n,
            Err(e) => return reject(self, &format!("Client event rejected: invalid channel name: {e}")),
        };
        if !name.kind().allows_client_events() {
            return reject(self, "Client event rejected: only private and presence channels accept client events");
        }
        // A subscription the cluster refused after the fact (member cap, a shard never
        // subscribed) is still in `subscriptions` but no longer in the channel.
        let user = match self.subscriptions.get(&name) {
            Some(u) if self.app.is_subscribed(&name, self.handle.socket_id) => u.clone(),
            _ if self.app.config.client_events == ClientEvents::All => None,
            _ => return reject(self, &format!("Client event rejected: not subscribed to {name}")),
        };
        if data.len() > self.app.config.max_event_data_size {
            return reject(
                self,
                &format!(
                    "Client event rejected: data is {} bytes; the limit is {}",
                    data.len(),
                    self.app.config.max_event_data_size
                ),
            );
        }
        if !self.client_events.take() {
            self.node.metrics.limit_hit("client_event_rate");
            return self.error(
                "client_event_rate",
                Some(CLIENT_EVENT_REJECTED),
                &format!("Client event rejected due to rate limit ({} per second)", self.app.config.client_event_rate),
            );
        }
        self.node.metrics.client_events.inc();
        let origin = Origin::Client { user_id: user.as_deref() };
        let _ = self.app.publish(&name, event, data, Some(self.handle.socket_id), origin, arrival);
        if self.app.webhooks().wants(crate::webhooks::WebhookKind::ClientEvent) {
            let socket_id = self.handle.socket_id.to_string();
            self.app.webhooks().client_event(&name, event, data, &socket_id, user.as_deref());
        }
    }

    /// Leaves every channel and releases the connection.
    pub fn finish(self) {
        let channels: Vec<_> = self.subscriptions.into_iter().collect();
        self.app.unregister(&self.handle, channels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_identity_keeps_the_parsed_member() {
        let p = presence_identity(r#"{"user_id":10,"user_info":{"name":"a"}}"#, 128, 1024).unwrap();
        assert_eq!((&*p.user_id, &*p.info), ("10", r#"{"name":"a"}"#));
        assert!(presence_identity("nope", 128, 1024).is_err());
    }
}
