//! JSON frames: what clients send (parsed into [`ClientFrame`]) and what the server sends
//! (built once per event by the functions below; the server shares the result
//! between every recipient).
//!
//! Server → client `data` is always a JSON-encoded string ("double encoding"), as
//! pusher-js expects; client → server `pusher:*` data is an object.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A parsed client → server frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    /// `pusher:ping`.
    Ping,
    /// `pusher:pong` (answer to the server's ping).
    Pong,
    /// `pusher:subscribe`.
    Subscribe {
        /// Channel name as sent (validated by the server).
        channel: String,
        /// `key:signature` for private and presence channels.
        auth: Option<String>,
        /// Presence channel data (a JSON string, signed as is).
        channel_data: Option<String>,
    },
    /// `pusher:unsubscribe`.
    Unsubscribe {
        /// Channel name.
        channel: String,
    },
    /// `pusher:signin`.
    Signin {
        /// `key:signature` over `socket_id::user::user_data`.
        auth: String,
        /// The user data JSON string.
        user_data: String,
    },
    /// A `client-*` event.
    ClientEvent {
        /// Event name (starts with `client-`).
        event: String,
        /// Channel it is sent on.
        channel: String,
        /// The data as the server will forward it: a string (decoded if the client
        /// sent a JSON string, the raw JSON text otherwise).
        data: String,
    },
}

/// Why a client frame was refused. Each maps to a `pusher:error` message; none closes
/// the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The text is not JSON.
    #[error("Invalid message format: not JSON ({0})")]
    NotJson(String),
    /// No `event` string.
    #[error("Invalid message format: missing 'event'")]
    MissingEvent,
    /// A required field is missing or has the wrong type.
    #[error("Invalid message format: '{0}' is missing or not a {1}")]
    BadField(&'static str, &'static str),
    /// A `pusher:` event the server does not know.
    #[error("Unsupported event '{0}'")]
    UnknownEvent(String),
    /// An event name that is neither `pusher:*` nor `client-*`.
    #[error("Event '{0}' is not allowed from clients: client events must start with 'client-'")]
    NotClientEvent(String),
    /// Event name over the limit.
    #[error("Event name is {0} characters long; the limit is {1}")]
    EventNameTooLong(usize, usize),
}

/// Longest event name accepted (Pusher's SDKs: 200).
pub const MAX_EVENT_NAME_LEN: usize = 200;

#[derive(Deserialize)]
struct RawFrame<'a> {
    #[serde(borrow)]
    event: Option<&'a RawValue>,
    #[serde(borrow, default)]
    channel: Option<&'a RawValue>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

fn as_string(v: Option<&RawValue>) -> Option<String> {
    v.and_then(|r| serde_json::from_str::<String>(r.get()).ok())
}

/// The string form of a data value: a JSON string is decoded, anything else kept as JSON.
fn data_as_string(v: &RawValue) -> String {
    serde_json::from_str::<String>(v.get()).unwrap_or_else(|_| v.get().to_string())
}

/// `pusher:*` data may be an object or (from some clients) a JSON string of an object.
fn data_object(v: Option<&RawValue>) -> Option<serde_json::Map<String, serde_json::Value>> {
    let v = v?;
    match serde_json::from_str::<serde_json::Value>(v.get()).ok()? {
        serde_json::Value::Object(m) => Some(m),
        serde_json::Value::String(s) => match serde_json::from_str(&s).ok()? {
            serde_json::Value::Object(m) => Some(m),
            _ => None,
        },
        _ => None,
    }
}

fn field_string(
    m: &serde_json::Map<String, serde_json::Value>,
    name: &'static str,
) -> Result<Option<String>, FrameError> {
    match m.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(FrameError::BadField(name, "string")),
    }
}

/// Parses one text frame from a client.
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, FrameError> {
    let raw: RawFrame<'_> = serde_json::from_str(text).map_err(|e| {
        // Cut at a char boundary: the message can quote the client's text.
        FrameError::NotJson(e.to_string().chars().take(120).collect())
    })?;
    let event = as_string(raw.event).ok_or(FrameError::MissingEvent)?;
    if event.chars().count() > MAX_EVENT_NAME_LEN {
        return Err(FrameError::EventNameTooLong(event.chars().count(), MAX_EVENT_NAME_LEN));
    }
    match event.as_str() {
        "pusher:ping" => Ok(ClientFrame::Ping),
        "pusher:pong" => Ok(ClientFrame::Pong),
        "pusher:subscribe" => {
            let d = data_object(raw.data).ok_or(FrameError::BadField("data", "object"))?;
            let channel = field_string(&d, "channel")?.ok_or(FrameError::BadField("channel", "string"))?;
            Ok(ClientFrame::Subscribe {
                channel,
                auth: field_string(&d, "auth")?,
                channel_data: field_string(&d, "channel_data")?,
            })
        }
        "pusher:unsubscribe" => {
            let d = data_object(raw.data).ok_or(FrameError::BadField("data", "object"))?;
            let channel = field_string(&d, "channel")?.ok_or(FrameError::BadField("channel", "string"))?;
            Ok(ClientFrame::Unsubscribe { channel })
        }
        "pusher:signin" => {
            let d = data_object(raw.data).ok_or(FrameError::BadField("data", "object"))?;
            Ok(ClientFrame::Signin {
                auth: field_string(&d, "auth")?.ok_or(FrameError::BadField("auth", "string"))?,
                user_data: field_string(&d, "user_data")?.ok_or(FrameError::BadField("user_data", "string"))?,
            })
        }
        e if e.starts_with("pusher:") || e.starts_with("pusher_internal:") => {
            Err(FrameError::UnknownEvent(e.chars().take(64).collect()))
        }
        e if e.starts_with("client-") => {
            let channel = as_string(raw.channel).ok_or(FrameError::BadField("channel", "string"))?;
            let data = raw.data.map(data_as_string).unwrap_or_default();
            Ok(ClientFrame::ClientEvent { event, channel, data })
        }
        e => Err(FrameError::NotClientEvent(e.chars().take(64).collect())),
    }
}

#[derive(Serialize)]
struct Out<'a> {
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
}

/// Serialises a server → client frame.
pub fn event_frame(event: &str, channel: Option<&str>, data: Option<&str>, user_id: Option<&str>) -> String {
    let out = Out { event, channel, data, user_id };
    // Serialising a struct of strings cannot fail.
    serde_json::to_string(&out).unwrap_or_default()
}

fn json_string<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// `pusher:connection_established`.
pub fn connection_established(socket_id: &str, activity_timeout: u64) -> String {
    let data = json_string(&serde_json::json!({"socket_id": socket_id, "activity_timeout": activity_timeout}));
    event_frame("pusher:connection_established", None, Some(&data), None)
}

/// `pusher:error` with a code (or null) and a message.
pub fn error_frame(code: Option<u16>, message: &str) -> String {
    let data = json_string(&serde_json::json!({"code": code, "message": message}));
    event_frame("pusher:error", None, Some(&data), None)
}

/// `pusher:pong`.
pub const PONG: &str = r#"{"event":"pusher:pong","data":"{}"}"#;

/// `pusher:ping` (the server's liveness check).
pub const PING: &str = r#"{"event":"pusher:ping","data":"{}"}"#;

/// The ping pusher-js sends after `activity_timeout` of silence, byte for byte: the one
/// frame every idle socket sends, answered without going through the JSON parser.
pub const PUSHER_JS_PING: &str = r#"{"event":"pusher:ping","data":{}}"#;

/// `pusher_internal:subscription_succeeded` for a public or private channel.
pub fn subscription_succeeded(channel: &str) -> String {
    event_frame("pusher_internal:subscription_succeeded", Some(channel), Some("{}"), None)
}

/// `pusher_internal:subscription_succeeded` for a presence channel, with its members.
/// `members` yields `(user_id, raw user_info JSON)`.
pub fn presence_subscription_succeeded<'a>(channel: &str, members: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut ids = Vec::new();
    let mut hash = String::from("{");
    for (i, (id, info)) in members.enumerate() {
        if i > 0 {
            hash.push(',');
        }
        hash.push_str(&json_string(&id));
        hash.push(':');
        hash.push_str(info);
        ids.push(id);
    }
    hash.push('}');
    let data = format!(r#"{{"presence":{{"ids":{},"hash":{},"count":{}}}}}"#, json_string(&ids), hash, ids.len());
    event_frame("pusher_internal:subscription_succeeded", Some(channel), Some(&data), None)
}

/// `pusher:subscription_error` on a channel (Laravel Echo's `.error()` hears it).
pub fn subscription_error(channel: &str, error: &str, status: u16) -> String {
    let data = json_string(&serde_json::json!({"type": "AuthError", "error": error, "status": status}));
    event_frame("pusher:subscription_error", Some(channel), Some(&data), None)
}

/// `pusher:subscription_error` status 503 for a subscription this node cannot serve
/// right now: the client may subscribe again later.
pub fn subscription_unavailable(channel: &str, error: &str) -> String {
    let data = json_string(&serde_json::json!({"type": "Unavailable", "error": error, "status": 503}));
    event_frame("pusher:subscription_error", Some(channel), Some(&data), None)
}

/// `pusher_internal:member_added`.
pub fn member_added(channel: &str, user_id: &str, user_info: &str) -> String {
    let data = format!(r#"{{"user_id":{},"user_info":{}}}"#, json_string(&user_id), user_info);
    event_frame("pusher_internal:member_added", Some(channel), Some(&data), None)
}

/// `pusher_internal:member_removed`.
pub fn member_removed(channel: &str, user_id: &str) -> String {
    let data = format!(r#"{{"user_id":{}}}"#, json_string(&user_id));
    event_frame("pusher_internal:member_removed", Some(channel), Some(&data), None)
}

/// `pusher_internal:subscription_count`.
pub fn subscription_count(channel: &str, count: usize) -> String {
    let data = format!(r#"{{"subscription_count":{count}}}"#);
    event_frame("pusher_internal:subscription_count", Some(channel), Some(&data), None)
}

/// `pusher:cache_miss`.
pub fn cache_miss(channel: &str) -> String {
    event_frame("pusher:cache_miss", Some(channel), None, None)
}

/// `pusher:signin_success`.
pub fn signin_success(user_data: &str) -> String {
    let data = json_string(&serde_json::json!({"user_data": user_data}));
    event_frame("pusher:signin_success", None, Some(&data), None)
}

/// `pusher_internal:watchlist_events` with `online` and/or `offline` user ids.
pub fn watchlist_events(online: &[&str], offline: &[&str]) -> String {
    let mut events = Vec::new();
    if !online.is_empty() {
        events.push(serde_json::json!({"name": "online", "user_ids": online}));
    }
    if !offline.is_empty() {
        events.push(serde_json::json!({"name": "offline", "user_ids": offline}));
    }
    let data = json_string(&serde_json::json!({"events": events}));
    event_frame("pusher_internal:watchlist_events", None, Some(&data), None)
}

/// A complete, unmasked WebSocket text frame (FIN set, no extensions) carrying `payload`:
/// the bytes a server writes to the socket. Server frames are never masked, so one
/// encoding is shared by every subscriber of a broadcast (RFC 6455 §5.2).
pub fn ws_text_frame(payload: &[u8]) -> bytes::Bytes {
    let len = payload.len();
    let mut out = bytes::BytesMut::with_capacity(len + 10);
    out.extend_from_slice(&[0x81]);
    if len < 126 {
        out.extend_from_slice(&[len as u8]);
    } else if let Ok(n) = u16::try_from(len) {
        out.extend_from_slice(&[126]);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        out.extend_from_slice(&[127]);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_subscribe_variants() {
        let f = parse_client_frame(
            r#"{"event":"pusher:subscribe","data":{"channel":"presence-a","auth":"k:s","channel_data":"{\"user_id\":1}"}}"#,
        )
        .unwrap();
        assert_eq!(
            f,
            ClientFrame::Subscribe {
                channel: "presence-a".into(),
                auth: Some("k:s".into()),
                channel_data: Some(r#"{"user_id":1}"#.into())
            }
        );
        // data as a JSON string of an object is tolerated
        let f = parse_client_frame(r#"{"event":"pusher:subscribe","data":"{\"channel\":\"a\"}"}"#).unwrap();
        assert!(matches!(f, ClientFrame::Subscribe { ref channel, .. } if channel == "a"));
    }

    #[test]
    fn refuses_bad_frames_with_reasons() {
        assert!(matches!(parse_client_frame("nope"), Err(FrameError::NotJson(_))));
        assert!(parse_client_frame("[1,2]").is_err());
        assert_eq!(parse_client_frame("{}"), Err(FrameError::MissingEvent));
        assert_eq!(parse_client_frame(r#"{"event":5}"#), Err(FrameError::MissingEvent));
        assert_eq!(parse_client_frame(r#"{"event":"pusher:subscribe"}"#), Err(FrameError::BadField("data", "object")));
        assert_eq!(
            parse_client_frame(r#"{"event":"pusher:subscribe","data":{"channel":7}}"#),
            Err(FrameError::BadField("channel", "string"))
        );
        assert!(matches!(parse_client_frame(r#"{"event":"pusher:bogus"}"#), Err(FrameError::UnknownEvent(_))));
        assert!(matches!(parse_client_frame(r#"{"event":"hello"}"#), Err(FrameError::NotClientEvent(_))));
        let long = format!(r#"{{"event":"client-{}","channel":"private-a"}}"#, "x".repeat(300));
        assert!(matches!(parse_client_frame(&long), Err(FrameError::EventNameTooLong(..))));
    }

    #[test]
    fn client_event_data_is_forwarded_as_a_string() {
        let f = parse_client_frame(r#"{"event":"client-a","channel":"private-x","data":{"k":1}}"#).unwrap();
        assert_eq!(
            f,
            ClientFrame::ClientEvent {
                event: "client-a".into(),
                channel: "private-x".into(),
                data: r#"{"k":1}"#.into()
            }
        );
        let f = parse_client_frame(r#"{"event":"client-a","channel":"private-x","data":"hi"}"#).unwrap();
        assert!(matches!(f, ClientFrame::ClientEvent { ref data, .. } if data == "hi"));
    }

    #[test]
    fn server_frames_double_encode_data() {
        let f = connection_established("1.2", 120);
        let v: serde_json::Value = serde_json::from_str(&f).unwrap();
        assert_eq!(v["event"], "pusher:connection_established");
        let inner: serde_json::Value = serde_json::from_str(v["data"].as_str().unwrap()).unwrap();
        assert_eq!(inner["socket_id"], "1.2");
        assert_eq!(inner["activity_timeout"], 120);

        let f = presence_subscription_succeeded("presence-a", [("1", r#"{"n":"a"}"#), ("2", "null")].into_iter());
        let v: serde_json::Value = serde_json::from_str(&f).unwrap();
        let inner: serde_json::Value = serde_json::from_str(v["data"].as_str().unwrap()).unwrap();
        assert_eq!(inner["presence"]["count"], 2);
        assert_eq!(inner["presence"]["ids"], serde_json::json!(["1", "2"]));
        assert_eq!(inner["presence"]["hash"]["1"]["n"], "a");

        let f = watchlist_events(&["1"], &["2", "3"]);
        let v: serde_json::Value = serde_json::from_str(&f).unwrap();
        let inner: serde_json::Value = serde_json::from_str(v["data"].as_str().unwrap()).unwrap();
        assert_eq!(inner["events"][1]["user_ids"], serde_json::json!(["2", "3"]));
    }

    #[test]
    fn ws_text_frames_match_tungstenite_for_every_length_form() {
        use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
        for len in [0usize, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            let payload = "x".repeat(len);
            let ours = ws_text_frame(payload.as_bytes());
            let mut theirs = Vec::new();
            WsFrame::message(
                payload.clone(),
                tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode::Data(
                    tokio_tungstenite::tungstenite::protocol::frame::coding::Data::Text,
                ),
                true,
            )
            .format(&mut theirs)
            .unwrap();
            assert_eq!(&ours[..], &theirs[..], "length {len}");
        }
    }
}
