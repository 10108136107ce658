//! Socket ids: `\d+\.\d+`, unique across a cluster because `socket_id` exclusion on
//! publish must find exactly one connection wherever it lives.

use std::fmt;
use std::str::FromStr;

/// A connection's id as sent in `pusher:connection_established` (`"123.456"`).
///
/// Both halves are random, which makes a clash between two nodes of a cluster as
/// unlikely as a 60-bit random collision.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct SocketId {
    high: u64,
    low: u64,
}

/// The largest value of each half; keeps ids short and within JavaScript's safe integers.
const HALF_MAX: u64 = 9_999_999_999;

impl SocketId {
    /// A fresh random id.
    pub fn random() -> Self {
        use rand::Rng;
        let mut rng = rand::thread_rng();
        SocketId { high: rng.gen_range(1..=HALF_MAX), low: rng.gen_range(1..=HALF_MAX) }
    }

    /// Builds an id from its two halves.
    pub fn from_parts(high: u64, low: u64) -> Self {
        SocketId { high, low }
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.high, self.low)
    }
}

/// The text was not of the form `digits.digits`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid socket_id '{0}': expected digits.digits")]
pub struct InvalidSocketId(pub String);

impl FromStr for SocketId {
    type Err = InvalidSocketId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidSocketId(s.chars().take(64).collect());
        let (a, b) = s.split_once('.').ok_or_else(bad)?;
        let digits = |p: &str| !p.is_empty() && p.len() <= 19 && p.bytes().all(|c| c.is_ascii_digit());
        if !digits(a) || !digits(b) {
            return Err(bad());
        }
        Ok(SocketId { high: a.parse().map_err(|_| bad())?, low: b.parse().map_err(|_| bad())? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_matches_the_sdk_pattern() {
        for _ in 0..100 {
            let id = SocketId::random();
            let text = id.to_string();
            assert!(text.split('.').all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit())));
            assert_eq!(text.parse::<SocketId>().unwrap(), id);
        }
    }

    #[test]
    fn rejects_malformed_ids() {
        for bad in ["", "1", "1.", ".1", "a.b", "1.2.3", "1 .2", "-1.2", "99999999999999999999.1"] {
            assert!(bad.parse::<SocketId>().is_err(), "{bad}");
        }
    }
}
