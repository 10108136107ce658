//! The inter-node message format: a versioned JSON envelope published once per event
//! on the cluster's Redis channel. JSON keeps it language-neutral and lets two adjacent
//! rtc versions interoperate during a rolling deploy: unknown fields are ignored, and a
//! message of an unknown version or kind is counted and skipped, never a panic.
//!
//! With a cluster secret, every message is sealed: the wire form is
//! `rtc-mac1:<64 hex HMAC-SHA256 of the payload>:<payload>`, the MAC computed over the
//! exact payload bytes that follow. A node with a secret drops (and counts) a message
//! that is unsealed or whose MAC does not verify ([`open`]); a node without one strips
//! the seal unchecked, so a secret can be rolled out one node at a time.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub use crate::port::BusMessage;
use crate::secret::Secret;

/// Prefix of a sealed message.
const SEAL_PREFIX: &[u8] = b"rtc-mac1:";
/// Hex characters of the MAC.
const MAC_HEX: usize = 64;

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
    /// Set by a publisher that delivers this message to its own sockets when it comes
    /// back from the bus: the number its `Loopback` holds that delivery under. Other
    /// nodes ignore it (and a version without it ignores the field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub looped: Option<u64>,
    /// What happened.
    #[serde(flatten)]
    pub msg: BusMessage,
}

impl Envelope {
    /// A message of `app` published now by node `origin` in its boot `boot`.
    pub fn now(origin: &str, boot: &str, app: &str, msg: BusMessage) -> Envelope {
        Envelope {
            v: BUS_VERSION,
            origin: origin.to_string(),
            boot: boot.to_string(),
            ts_ms: rtc_model::unix_ms(),
            app: app.to_string(),
            looped: None,
            msg,
        }
    }
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
    /// This node has a cluster secret and the message carries no MAC.
    #[error("unsigned bus message (this node requires the cluster secret's MAC)")]
    Unsigned,
    /// The MAC does not verify with this node's cluster secret.
    #[error("bus message MAC does not verify")]
    BadMac,
}

impl BusError {
    /// Whether the message was refused as unauthenticated (counted apart from
    /// undecodable messages).
    pub fn is_unauthenticated(&self) -> bool {
        matches!(self, BusError::Unsigned | BusError::BadMac)
    }
}

fn mac(secret: &Secret) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes keys of any size")
}

/// Seals an encoded message with the cluster secret (see the module doc); without a
/// secret the payload goes out as is.
pub fn seal(payload: String, secret: Option<&Secret>) -> String {
    let Some(secret) = secret else { return payload };
    let mut m = mac(secret);
    m.update(payload.as_bytes());
    let tag = hex::encode(m.finalize().into_bytes());
    let mut out = String::with_capacity(SEAL_PREFIX.len() + MAC_HEX + 1 + payload.len());
    out.push_str("rtc-mac1:");
    out.push_str(&tag);
    out.push(':');
    out.push_str(&payload);
    out
}

/// Checks a received message's seal and returns the payload to [`decode`].
///
/// # Errors
/// With a secret: [`BusError::Unsigned`] for a message without a seal,
/// [`BusError::BadMac`] for one whose MAC does not verify (compared in constant time).
/// Without a secret a seal is stripped unchecked and nothing fails here.
pub fn open<'a>(bytes: &'a [u8], secret: Option<&Secret>) -> Result<&'a [u8], BusError> {
    let sealed = bytes
        .strip_prefix(SEAL_PREFIX)
        .filter(|rest| rest.len() > MAC_HEX && rest[MAC_HEX] == b':')
        .map(|rest| (&rest[..MAC_HEX], &rest[MAC_HEX + 1..]));
    match (secret, sealed) {
        (None, None) => Ok(bytes),
        (None, Some((_, payload))) => Ok(payload),
        (Some(_), None) => Err(BusError::Unsigned),
        (Some(secret), Some((tag, payload))) => {
            let tag = hex::decode(tag).map_err(|_| BusError::BadMac)?;
            let mut m = mac(secret);
            m.update(payload);
            m.verify_slice(&tag).map(|()| payload).map_err(|_| BusError::BadMac)
        }
    }
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
        Envelope { v: BUS_VERSION, origin: "n1".into(), boot: "b".into(), ts_ms: 5, app: "1".into(), looped: None, msg }
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
    fn sealed_messages_open_only_with_the_same_secret() {
        let secret = Secret::new("0123456789abcdef-cluster");
        let payload = encode(&env(BusMessage::Terminate { user_id: "u".into() }));
        let sealed = seal(payload.clone(), Some(&secret));
        assert!(sealed.starts_with("rtc-mac1:"), "{sealed}");
        assert_eq!(open(sealed.as_bytes(), Some(&secret)), Ok(payload.as_bytes()));
        // Without a secret the seal is stripped; an unsealed message passes unchanged.
        assert_eq!(open(sealed.as_bytes(), None), Ok(payload.as_bytes()));
        assert_eq!(open(payload.as_bytes(), None), Ok(payload.as_bytes()));
        assert_eq!(seal(payload.clone(), None), payload);
        // With a secret: unsigned, another secret, an altered payload or MAC are refused.
        assert_eq!(open(payload.as_bytes(), Some(&secret)), Err(BusError::Unsigned));
        let other = seal(payload.clone(), Some(&Secret::new("another-secret-0123456")));
        assert_eq!(open(other.as_bytes(), Some(&secret)), Err(BusError::BadMac));
        let altered = sealed.replace("\"u\"", "\"v\"");
        assert_ne!(altered, sealed);
        assert_eq!(open(altered.as_bytes(), Some(&secret)), Err(BusError::BadMac));
        let bad_hex = format!("rtc-mac1:{}:{payload}", "z".repeat(64));
        assert_eq!(open(bad_hex.as_bytes(), Some(&secret)), Err(BusError::BadMac));
        for junk in [&b"rtc-mac1:"[..], b"rtc-mac1:00:{}", &[0xff]] {
            assert!(open(junk, Some(&secret)).unwrap_err().is_unauthenticated());
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
