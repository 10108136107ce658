//! The rtc ops console: `rtc top`, `rtc status`, `rtc drain` and `rtc roll`.
//!
//! It talks to nodes only over the wire (their `/admin/*` HTTP endpoints and the
//! cluster registry, on the engine `--bus` names) and never links the server. [`model`] is the contract.
//!
//! # Layout (data flows top to bottom)
//! * [`cli`]: the flags of `top`, `status`, `drain` and `roll` and their resolution
//!   against `rtc.toml`.
//! * [`registry`]: the cluster registry on each engine (one Redis, Redis Cluster, NATS).
//! * [`client`]: the wire: admin HTTP requests, registry polls, Redis's figures, reply parsers.
//! * [`collect`]: the collector task, producing immutable [`snapshot::ClusterSnapshot`]s.
//! * [`known`]: the nodes seen so far (and their cache file), polled directly while Redis is down.
//! * [`figures`]: rates, trends and totals derived from consecutive snapshots.
//! * [`alerts`]: the failure signals judged from figures, with stable codes.
//! * [`capacity`]: the headroom check before draining a node.
//! * [`exit`]: the exit codes of every console command ([`Exit`]).
//! * [`status`]: `rtc status`, table or JSON.
//! * [`top`]: `rtc top`, the TUI: state, pure update, key table, theme, views.
//! * [`drain`]: `rtc drain`, one node drained with its progress shown.
//! * [`roll`]: `rtc roll`, a rolling restart one node at a time (plan, then execution).
//! * [`units`]: number formatting.

pub mod alerts;
pub mod capacity;
pub mod cli;
pub mod client;
pub mod collect;
pub mod drain;
pub mod exit;
pub mod figures;
pub mod known;
pub mod model;
pub mod registry;
pub mod roll;
pub mod snapshot;
pub mod status;
pub mod top;
pub mod units;

pub use cli::{StatusArgs, TopArgs};
pub use drain::{run_drain, DrainArgs};
pub use exit::Exit;
pub use roll::{run_roll, RollArgs};
pub use status::run_status;
pub use top::run_top;
