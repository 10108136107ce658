//! Channel names and their types.
//!
//! Names are at most [`MAX_CHANNEL_NAME_LEN`] characters from `[A-Za-z0-9_\-=@,.;]`
//! (Pusher's set), except the reserved `#server-to-user-{id}` channels that pusher-js
//! subscribes to after sign-in.

use std::fmt;
use std::sync::Arc;

/// Longest channel name accepted, prefix included (Pusher's SDKs and Soketi use 200).
pub const MAX_CHANNEL_NAME_LEN: usize = 200;

/// Prefix of the per-user channel used by `sendToUser`.
pub const SERVER_TO_USER_PREFIX: &str = "#server-to-user-";

/// The type of a channel, decided by its prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    /// No prefix: anyone may subscribe.
    Public,
    /// `private-`: needs a channel signature.
    Private,
    /// `private-encrypted-`: as private; payloads are opaque to the server.
    PrivateEncrypted,
    /// `presence-`: signature over channel data; member lists.
    Presence,
    /// `#server-to-user-{id}`: only for the signed-in user `id`.
    ServerToUser,
}

impl ChannelKind {
    /// Whether subscribing needs an `auth` signature.
    pub fn requires_auth(self) -> bool {
        matches!(self, ChannelKind::Private | ChannelKind::PrivateEncrypted | ChannelKind::Presence)
    }

    /// Whether client events (`client-*`) may be sent on this channel.
    pub fn allows_client_events(self) -> bool {
        matches!(self, ChannelKind::Private | ChannelKind::Presence)
    }

    /// A short lower-case name for metrics and the console.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Public => "public",
            ChannelKind::Private => "private",
            ChannelKind::PrivateEncrypted => "encrypted",
            ChannelKind::Presence => "presence",
            ChannelKind::ServerToUser => "user",
        }
    }
}

/// A validated channel name. Cheap to clone (shared string).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelName(Arc<str>);

/// Why a channel name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidChannel {
    /// The name is empty.
    #[error("channel name is empty")]
    Empty,
    /// The name is longer than the limit.
    #[error("channel name is {len} characters long; the limit is {max}")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The name holds a character outside `[A-Za-z0-9_\-=@,.;]`.
    #[error("channel name has an invalid character {0:?}; allowed: A-Z a-z 0-9 _ - = @ , . ;")]
    BadChar(char),
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '=' | '@' | ',' | '.' | ';')
}

impl ChannelName {
    /// Validates a channel name against the length limit and character set.
    pub fn parse(name: &str) -> Result<Self, InvalidChannel> {
        Self::parse_with_limit(name, MAX_CHANNEL_NAME_LEN)
    }

    /// As [`ChannelName::parse`] with an explicit length limit.
    pub fn parse_with_limit(name: &str, max: usize) -> Result<Self, InvalidChannel> {
        if name.is_empty() {
            return Err(InvalidChannel::Empty);
        }
        let len = name.chars().count();
        if len > max {
            return Err(InvalidChannel::TooLong { len, max });
        }
        let body = name.strip_prefix(SERVER_TO_USER_PREFIX).unwrap_or(name);
        if body.is_empty() {
            return Err(InvalidChannel::Empty);
        }
        if let Some(c) = body.chars().find(|c| !allowed(*c)) {
            return Err(InvalidChannel::BadChar(c));
        }
        Ok(ChannelName(Arc::from(name)))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The channel's type from its prefix.
    pub fn kind(&self) -> ChannelKind {
        kind_of(&self.0)
    }

    /// Whether this is a cache channel (`cache-`, `private-cache-`, …).
    pub fn is_cache(&self) -> bool {
        let n = self.as_str();
        n.starts_with("cache-")
            || n.starts_with("private-cache-")
            || n.starts_with("private-encrypted-cache-")
            || n.starts_with("presence-cache-")
    }

    /// For `#server-to-user-{id}`, the user id.
    pub fn server_to_user_id(&self) -> Option<&str> {
        self.0.strip_prefix(SERVER_TO_USER_PREFIX)
    }
}

/// The type of a channel name (no validation).
pub fn kind_of(name: &str) -> ChannelKind {
    if name.starts_with(SERVER_TO_USER_PREFIX) {
        ChannelKind::ServerToUser
    } else if name.starts_with("private-encrypted-") {
        ChannelKind::PrivateEncrypted
    } else if name.starts_with("private-") {
        ChannelKind::Private
    } else if name.starts_with("presence-") {
        ChannelKind::Presence
    } else {
        ChannelKind::Public
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

impl std::borrow::Borrow<str> for ChannelName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_prefixes() {
        let k = |n: &str| ChannelName::parse(n).unwrap().kind();
        assert_eq!(k("news"), ChannelKind::Public);
        assert_eq!(k("cache-news"), ChannelKind::Public);
        assert_eq!(k("private-a"), ChannelKind::Private);
        assert_eq!(k("private-cache-a"), ChannelKind::Private);
        assert_eq!(k("private-encrypted-a"), ChannelKind::PrivateEncrypted);
        assert_eq!(k("presence-room.1"), ChannelKind::Presence);
        assert_eq!(k("#server-to-user-42"), ChannelKind::ServerToUser);
        assert!(ChannelName::parse("presence-cache-x").unwrap().is_cache());
        assert!(!ChannelName::parse("presence-x").unwrap().is_cache());
    }

    #[test]
    fn rejects_hostile_names() {
        assert_eq!(ChannelName::parse(""), Err(InvalidChannel::Empty));
        assert!(matches!(ChannelName::parse(&"a".repeat(201)), Err(InvalidChannel::TooLong { .. })));
        assert!(ChannelName::parse(&"a".repeat(200)).is_ok());
        for bad in ["a b", "a/b", "a#b", "#other", "é", "a\u{0}", "a\"b", "#server-to-user-"] {
            assert!(ChannelName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ChannelName::parse("Aa0_-=@,.;").is_ok());
    }
}
