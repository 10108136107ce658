//! The Pusher Channels protocol (version 7), with no I/O: channel names, socket ids,
//! close codes, signatures, the JSON frames exchanged with clients, webhook payloads and
//! the client-event policy.
//!
//! Everything here is pure so it can be tested with byte-level fixtures and reused by
//! `rtc bench` (a client) as well as by the server.

pub mod auth;
pub mod channel;
pub mod client_events;
pub mod close;
pub mod frame;
pub mod presence;
pub mod socket_id;
pub mod webhook;

pub use channel::{ChannelKind, ChannelName};
pub use client_events::ClientEvents;
pub use close::CloseCode;
pub use socket_id::SocketId;
