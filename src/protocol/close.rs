//! Close codes 4000–4299 and what pusher-js does on each, in one place.
//!
//! pusher-js (`protocol.ts getCloseAction`): 4000 → TLS and retry, 4001–4099 → refused
//! (never retries), 4100–4199 → retry after a fixed 1 s, 4200–4299 → retry at once,
//! ≥ 4300 → refused. A drain must therefore only ever use 4100–4299.

/// A WebSocket close code the server sends, with its protocol meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseCode {
    /// 4001: the app key is unknown.
    AppNotFound,
    /// 4003: the app is disabled.
    AppDisabled,
    /// 4004: the app is over its connection quota.
    OverQuota,
    /// 4005: no app key in the path.
    PathNotFound,
    /// 4006: the version string is malformed.
    InvalidVersion,
    /// 4007: the protocol version is not supported.
    UnsupportedProtocol,
    /// 4008: no protocol version was supplied.
    NoProtocol,
    /// 4009: unauthorized (origin not allowed, sign-in not done in time).
    Unauthorized,
    /// 4100: over capacity; the client retries after 1 s (slow consumer).
    OverCapacity,
    /// 4200: reconnect now (drain, restart).
    Reconnect,
    /// 4201: no pong reply to the server's ping.
    PongTimeout,
    /// 1007: a text frame was not valid UTF-8 (RFC 6455).
    InvalidPayload,
    /// 1009: a frame over the hard size limit (RFC 6455).
    MessageTooBig,
}

/// What pusher-js does after a close with that code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAction {
    /// Never reconnects.
    Refused,
    /// Reconnects after a fixed 1 s.
    Backoff,
    /// Reconnects at once.
    Retry,
    /// Reconnects after 1 s (no action code; `closed`).
    Closed,
}

impl CloseCode {
    /// The numeric code on the wire.
    pub fn code(self) -> u16 {
        match self {
            CloseCode::AppNotFound => 4001,
            CloseCode::AppDisabled => 4003,
            CloseCode::OverQuota => 4004,
            CloseCode::PathNotFound => 4005,
            CloseCode::InvalidVersion => 4006,
            CloseCode::UnsupportedProtocol => 4007,
            CloseCode::NoProtocol => 4008,
            CloseCode::Unauthorized => 4009,
            CloseCode::OverCapacity => 4100,
            CloseCode::Reconnect => 4200,
            CloseCode::PongTimeout => 4201,
            CloseCode::InvalidPayload => 1007,
            CloseCode::MessageTooBig => 1009,
        }
    }

    /// The default human text sent as the close reason and in `pusher:error`.
    pub fn reason(self) -> &'static str {
        match self {
            CloseCode::AppNotFound => "App not found",
            CloseCode::AppDisabled => "App disabled",
            CloseCode::OverQuota => "App over connection quota",
            CloseCode::PathNotFound => "Path not found",
            CloseCode::InvalidVersion => "Invalid version string format",
            CloseCode::UnsupportedProtocol => "Unsupported protocol version",
            CloseCode::NoProtocol => "No protocol version supplied",
            CloseCode::Unauthorized => "Connection is unauthorized",
            CloseCode::OverCapacity => "Over capacity",
            CloseCode::Reconnect => "Reconnect",
            CloseCode::PongTimeout => "Pong reply not received",
            CloseCode::InvalidPayload => "Invalid UTF-8 in text frame",
            CloseCode::MessageTooBig => "Message too big",
        }
    }

    /// What pusher-js does on this close code (mirrors `getCloseAction`).
    pub fn client_action(self) -> ClientAction {
        client_action_for(self.code())
    }
}

/// pusher-js's `getCloseAction` plus its `closed` fallback, for any numeric code.
pub fn client_action_for(code: u16) -> ClientAction {
    match code {
        0..=3999 if (1002..=1004).contains(&code) => ClientAction::Backoff,
        0..=3999 => ClientAction::Closed,
        4000 => ClientAction::Retry,
        4001..=4099 => ClientAction::Refused,
        4100..=4199 => ClientAction::Backoff,
        4200..=4299 => ClientAction::Retry,
        _ => ClientAction::Refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_codes_never_make_pusher_js_give_up() {
        assert_eq!(CloseCode::Reconnect.client_action(), ClientAction::Retry);
        assert_eq!(CloseCode::OverCapacity.client_action(), ClientAction::Backoff);
        assert_eq!(CloseCode::PongTimeout.client_action(), ClientAction::Retry);
    }

    #[test]
    fn refusals_are_refused() {
        for c in [
            CloseCode::AppNotFound,
            CloseCode::AppDisabled,
            CloseCode::OverQuota,
            CloseCode::UnsupportedProtocol,
            CloseCode::NoProtocol,
            CloseCode::Unauthorized,
        ] {
            assert_eq!(c.client_action(), ClientAction::Refused, "{c:?}");
        }
        assert_eq!(client_action_for(4301), ClientAction::Refused);
        assert_eq!(client_action_for(1006), ClientAction::Closed);
        assert_eq!(client_action_for(1009), ClientAction::Closed);
    }
}
