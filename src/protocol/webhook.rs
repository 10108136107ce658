//! What a webhook says: the event kinds, their payloads and the signed body. Pure: no
//! I/O, so the wire format is tested here byte for byte.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::protocol::auth;

/// One webhook event type (the `name` field of an event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookKind {
    /// A channel got its first subscriber (cluster-wide).
    ChannelOccupied,
    /// A channel lost its last subscriber (sent after the vacate delay).
    ChannelVacated,
    /// A user joined a presence channel (first socket).
    MemberAdded,
    /// A user left a presence channel (last socket; sent after the delay).
    MemberRemoved,
    /// A client sent a `client-*` event.
    ClientEvent,
    /// A cache channel was subscribed to while it had no cached event.
    CacheMiss,
    /// A channel's subscriber count changed.
    SubscriptionCount,
}

impl WebhookKind {
    /// Every kind, in the order of the reference table.
    pub const ALL: [WebhookKind; 7] = [
        WebhookKind::ChannelOccupied,
        WebhookKind::ChannelVacated,
        WebhookKind::MemberAdded,
        WebhookKind::MemberRemoved,
        WebhookKind::ClientEvent,
        WebhookKind::CacheMiss,
        WebhookKind::SubscriptionCount,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookKind::ChannelOccupied => "channel_occupied",
            WebhookKind::ChannelVacated => "channel_vacated",
            WebhookKind::MemberAdded => "member_added",
            WebhookKind::MemberRemoved => "member_removed",
            WebhookKind::ClientEvent => "client_event",
            WebhookKind::CacheMiss => "cache_miss",
            WebhookKind::SubscriptionCount => "subscription_count",
        }
    }

    /// The kind with this wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// `member_added` or `member_removed` (they have reserved room in the queue).
    pub fn is_member(self) -> bool {
        matches!(self, WebhookKind::MemberAdded | WebhookKind::MemberRemoved)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for WebhookKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of event kinds (an endpoint's filter).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct KindSet(u8);

impl KindSet {
    /// Every kind.
    pub const ALL: KindSet = KindSet((1 << WebhookKind::ALL.len()) - 1);

    /// No kind.
    pub const fn empty() -> Self {
        KindSet(0)
    }

    /// This set plus `kind`.
    #[must_use]
    pub fn with(self, kind: WebhookKind) -> Self {
        KindSet(self.0 | kind.bit())
    }

    /// Both sets together.
    #[must_use]
    pub fn union(self, other: KindSet) -> Self {
        KindSet(self.0 | other.0)
    }

    /// Whether `kind` is in the set.
    pub fn contains(self, kind: WebhookKind) -> bool {
        self.0 & kind.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds in the set.
    pub fn kinds(self) -> impl Iterator<Item = WebhookKind> {
        WebhookKind::ALL.into_iter().filter(move |k| self.contains(*k))
    }

    /// Parses a list of wire names.
    ///
    /// # Errors
    /// The first unknown name, with the list of valid ones; or an empty list.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut set = KindSet::empty();
        for name in names {
            let name = name.trim();
            match WebhookKind::parse(name) {
                Some(k) => set = set.with(k),
                None => {
                    let valid: Vec<&str> = WebhookKind::ALL.iter().map(|k| k.as_str()).collect();
                    return Err(format!("'{name}' is not a webhook event; expected one of {}", valid.join(", ")));
                }
            }
        }
        if set.is_empty() {
            return Err("lists no event; leave it out to send every event".into());
        }
        Ok(set)
    }
}

impl fmt::Debug for KindSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.kinds().map(WebhookKind::as_str)).finish()
    }
}

/// One event in a webhook body. Fields follow Pusher's table: `name` and `channel`
/// always, the others by kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookEvent {
    /// The kind.
    pub name: WebhookKind,
    /// The channel.
    pub channel: String,
    /// Client event name (`client_event`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Client event data, a string (`client_event`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Sender's socket id (`client_event`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_id: Option<String>,
    /// The member (`member_added`, `member_removed`), or the sender of a client event
    /// on a presence channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Subscribers (`subscription_count`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_count: Option<u64>,
}

impl WebhookEvent {
    /// An event with only `name` and `channel` (occupied, vacated, cache miss).
    pub fn channel(kind: WebhookKind, channel: &str) -> Self {
        WebhookEvent {
            name: kind,
            channel: channel.to_string(),
            event: None,
            data: None,
            socket_id: None,
            user_id: None,
            subscription_count: None,
        }
    }

    /// `member_added` or `member_removed`.
    pub fn member(kind: WebhookKind, channel: &str, user_id: &str) -> Self {
        WebhookEvent { user_id: Some(user_id.to_string()), ..Self::channel(kind, channel) }
    }

    /// `client_event`; `user_id` on presence channels only.
    pub fn client_event(channel: &str, event: &str, data: &str, socket_id: &str, user_id: Option<&str>) -> Self {
        WebhookEvent {
            event: Some(event.to_string()),
            data: Some(data.to_string()),
            socket_id: Some(socket_id.to_string()),
            user_id: user_id.map(str::to_string),
            ..Self::channel(WebhookKind::ClientEvent, channel)
        }
    }

    /// `subscription_count`.
    pub fn subscription_count(channel: &str, count: u64) -> Self {
        WebhookEvent { subscription_count: Some(count), ..Self::channel(WebhookKind::SubscriptionCount, channel) }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    time_ms: u64,
    events: Vec<&'a WebhookEvent>,
}

/// The JSON body `{"time_ms": …, "events": […]}`.
pub fn body(time_ms: u64, events: &[Arc<WebhookEvent>]) -> Vec<u8> {
    let body = Body { time_ms, events: events.iter().map(|e| &**e).collect() };
    // Strings and integers only: serialising cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

/// `X-Pusher-Signature`: `hex(HMAC-SHA256(secret, body))`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    auth::sign(secret, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_sets_parse() {
        for k in WebhookKind::ALL {
            assert_eq!(WebhookKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        assert_eq!(KindSet::ALL.kinds().count(), 7);
        let s = KindSet::parse(["channel_occupied", " member_added "]).unwrap();
        assert!(s.contains(WebhookKind::ChannelOccupied) && s.contains(WebhookKind::MemberAdded));
        assert!(!s.contains(WebhookKind::ChannelVacated));
        assert_eq!(format!("{s:?}"), r#"{"channel_occupied", "member_added"}"#);
        let e = KindSet::parse(["channel_occupied", "channel_exploded"]).unwrap_err();
        assert!(e.contains("'channel_exploded'") && e.contains("subscription_count"), "{e}");
        assert!(KindSet::parse([]).is_err());
    }

    #[test]
    fn payloads_follow_the_reference_table() {
        let events = [
            Arc::new(WebhookEvent::channel(WebhookKind::ChannelOccupied, "c")),
            Arc::new(WebhookEvent::member(WebhookKind::MemberRemoved, "presence-a", "u1")),
            Arc::new(WebhookEvent::client_event("private-a", "client-x", "{\"a\":1}", "1.2", None)),
            Arc::new(WebhookEvent::client_event("presence-a", "client-y", "hi", "3.4", Some("u2"))),
            Arc::new(WebhookEvent::subscription_count("c", 3)),
        ];
        let text = String::from_utf8(body(1327078148132, &events)).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"time_ms":1327078148132,"events":["#,
                r#"{"name":"channel_occupied","channel":"c"},"#,
                r#"{"name":"member_removed","channel":"presence-a","user_id":"u1"},"#,
                r#"{"name":"client_event","channel":"private-a","event":"client-x","data":"{\"a\":1}","socket_id":"1.2"},"#,
                r#"{"name":"client_event","channel":"presence-a","event":"client-y","data":"hi","socket_id":"3.4","user_id":"u2"},"#,
                r#"{"name":"subscription_count","channel":"c","subscription_count":3}"#,
                "]}"
            )
        );
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
