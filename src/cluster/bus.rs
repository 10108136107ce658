//! The inter-node message format: a versioned JSON envelope published once per event
//! on the cluster's Redis channel. JSON keeps it language-neutral and lets two adjacent
//! rtc versions interoperate during a rolling deploy: unknown fields are ignored, and a
//! message of an unknown version or kind is counted and skipped, never a panic.

use serde::{Deserialize, Serialize};

/// The version this build writes and reads.
pub const BUS_VERSION: u32 = 1;

/// One message on the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Format version ([`BUS_VERSION`]).
    pub v: u32,
    /// Node id of the publisher.
    pub origin: String,
    /// Boot id of the publisher (tells a restarted node from its previous run).
    pub boot: String,
    /// Publish time, unix milliseconds (receivers measure bus lag from it).
    pub ts_ms: u64,
    /// App id.
    pub app: String,
    /// What happened.
    #[serde(flatten)]
    pub msg: BusMessage,
}

/// The message kinds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BusMessage {
    /// An event to fan out to a channel's local subscribers (HTTP API publish, client
    /// event, or `#server-to-user-` send).
    Event {
        /// Channel name.
        channel: String,
        /// Event name.
        event: String,
        /// Event data (a string, forwarded as is).
        data: String,
        /// `socket_id` to skip, wherever it lives.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        except: Option<String>,
        /// Sender's user id on presence client events.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
    },
    /// A user's first socket anywhere joined a presence channel.
    MemberAdded {
        /// Channel name.
        channel: String,
        /// User id.
        user_id: String,
        /// Raw JSON of the user's info.
        user_info: String,
    },
    /// A user's last socket anywhere left a presence channel.
    MemberRemoved {
        /// Channel name.
        channel: String,
        /// User id.
        user_id: String,
    },
    /// The cluster-wide subscriber count of a channel changed.
    SubscriptionCount {
        /// Channel name.
        channel: String,
        /// Subscribers across the cluster.
        count: u64,
    },
    /// Close every socket signed in as this user.
    Terminate {
        /// User id.
        user_id: String,
    },
    /// A watched user came online (first signed-in socket anywhere) or went offline.
    Watchlist {
        /// User id.
        user_id: String,
        /// True for online.
        online: bool,
    },
}

/// Why a bus message was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// Not a JSON envelope (or an unknown kind).
    #[error("undecodable bus message: {0}")]
    Malformed(String),
    /// Written by an incompatible version.
    #[error("bus message version {0} is not supported (this node reads {BUS_VERSION})")]
    Version(u32),
}

#[derive(Deserialize)]
struct VersionOnly {
    v: u32,
}

/// Encodes an envelope.
pub fn encode(env: &Envelope) -> String {
    // An envelope of strings and integers always serialises.
    serde_json::to_string(env).unwrap_or_default()
}

/// Decodes bytes from the bus.
///
/// # Errors
/// [`BusError::Version`] for another format version, [`BusError::Malformed`] otherwise.
pub fn decode(bytes: &[u8]) -> Result<Envelope, BusError> {
    let short = |e: serde_json::Error| {
        // Cut at a char boundary: the message can quote the payload.
        BusError::Malformed(e.to_string().chars().take(120).collect())
    };
    let v: VersionOnly = serde_json::from_slice(bytes).map_err(short)?;
    if v.v != BUS_VERSION {
        return Err(BusError::Version(v.v));
    }
    serde_json::from_slice(bytes).map_err(short)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(msg: BusMessage) -> Envelope {
        Envelope { v: BUS_VERSION, origin: "n1".into(), boot: "b".into(), ts_ms: 5, app: "1".into(), msg }
    }

    #[test]
    fn round_trips_every_kind() {
        for msg in [
            BusMessage::Event {
                channel: "c".into(),
                event: "e".into(),
                data: "{\"a\":1}".into(),
                except: Some("1.2".into()),
                user_id: None,
            },
            BusMessage::MemberAdded { channel: "presence-a".into(), user_id: "u".into(), user_info: "{}".into() },
            BusMessage::MemberRemoved { channel: "presence-a".into(), user_id: "u".into() },
            BusMessage::SubscriptionCount { channel: "c".into(), count: 3 },
            BusMessage::Terminate { user_id: "u".into() },
            BusMessage::Watchlist { user_id: "u".into(), online: true },
        ] {
            let e = env(msg);
            assert_eq!(decode(encode(&e).as_bytes()), Ok(e));
        }
    }

    #[test]
    fn newer_fields_are_ignored_and_unknown_versions_or_kinds_are_refused() {
        let with_extra =
            r#"{"v":1,"origin":"n","boot":"b","ts_ms":1,"app":"1","kind":"terminate","user_id":"u","new_field":[1]}"#;
        assert!(decode(with_extra.as_bytes()).is_ok());
        let v2 = r#"{"v":2,"origin":"n","boot":"b","ts_ms":1,"app":"1","kind":"terminate","user_id":"u"}"#;
        assert_eq!(decode(v2.as_bytes()), Err(BusError::Version(2)));
        let unknown = r#"{"v":1,"origin":"n","boot":"b","ts_ms":1,"app":"1","kind":"teleport"}"#;
        assert!(matches!(decode(unknown.as_bytes()), Err(BusError::Malformed(_))));
        for junk in [&b""[..], b"null", b"[]", b"{\"v\":\"1\"}", &[0xff, 0xfe]] {
            assert!(decode(junk).is_err());
        }
    }
}
