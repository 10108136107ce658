//! Who may send client events (`client-*`): an app's policy, checked by the server
//! before it relays a client event.

/// Who may send client events (`client-*`), as Reverb's `accept_client_events_from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientEvents {
    /// Sockets subscribed to the channel (the default, as in Reverb and Pusher).
    Members,
    /// Any socket of the app, subscribed or not.
    All,
    /// Nobody: client events are refused with `pusher:error` 4301.
    #[value(alias = "none")]
    #[serde(alias = "none")]
    Off,
}
