//! rtc: a clustered Pusher-protocol (version 7) WebSocket server and the on-call console
//! that operates it.
//!
//! # Layout
//! * [`protocol`]: the Pusher wire protocol with no I/O: frames, channel names, socket
//!   ids, close codes, signatures, webhook payloads. Imports nothing else of the crate.
//! * [`config`]: flags, `RTC_*`/`REVERB_*` environment and `rtc.toml`, resolved into one
//!   validated [`config::ServeConfig`]. Imports only `cli` (its input), `protocol`,
//!   `secret` and `logging`.
//! * [`port`]: the port between the server and a cluster engine: the traits
//!   ([`port::ClusterPort`], [`port::Claims`], [`port::Inbox`]) and the plain data that
//!   crosses (bus messages, state operations, outcomes). Imports only `protocol`.
//! * [`server`]: the node: WebSocket upgrade, one task per socket, channels, presence,
//!   fan-out, health, and what it does with the engine's outcomes. Knows engines only
//!   through [`port`].
//! * [`cluster`]: the Redis engine of cluster mode (implements [`port::ClusterPort`]):
//!   the bus, the registry, shared state. Never imports `server`.
//! * [`http_api`]: the signed Pusher HTTP API.
//! * [`webhooks`]: signed, batched, retried webhooks to the apps' endpoints, sent once
//!   per cluster.
//! * [`procfs`]: CPU and memory of a process and of the machine, from `/proc`.
//! * [`admin`]: `/metrics` and `/admin/stats`, behind the admin token.
//! * [`serve`]: start-up of `rtc serve` and its composition root: picks the engine,
//!   builds the node, assembles the routes (limits, binding, signals).
//! * [`bench`]: `rtc bench`, a Pusher-protocol load generator (a client; it never uses
//!   server internals).
//! * [`cli`]: the command line, from which the man page and completions are generated.
//! * [`fuzzing`]: the fuzz harnesses shared by `fuzz/` and `tests/fuzz_corpus.rs`.

pub mod admin;
pub mod bench;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod fuzzing;
pub mod http_api;
pub mod logging;
pub mod manpage;
pub mod metrics;
pub mod nats;
pub mod port;
pub mod procfs;
pub mod protocol;
pub mod secret;
pub mod serve;
pub mod server;
pub mod webhooks;

/// The version, with the git revision when built from a checkout.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("RTC_GIT_REV"), ")");
