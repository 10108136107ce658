//! `rtc roll`: a rolling restart of a cluster, one node at a time, guarded by capacity.
//!
//! For each node (registry order or `--order`): check the headroom (the survivors, with
//! the node's sockets spread over them, stay under the planning line) and refuse with
//! the arithmetic unless `--force`; cordon the nodes not yet rolled when the rolled ones
//! can take everything (so clients do not land on a node about to be drained next);
//! drain the node (or run `--exec`, e.g. `systemctl restart rtc@{node}`); wait until it
//! is back in the registry as `serving` with a new boot id; uncordon; wait `--settle`;
//! next. One roll at a time per cluster (a lock on the cluster's engine, showing its
//! holder: see [`crate::registry::RollStore`]); progress is recorded there for
//! `--resume`. Ctrl-C stops after the current step.
//!
//! Exit codes: 0 done (or the dry-run plan passes), 1 failed (a node did not drain or
//! come back in time), 2 usage, 3 refused by a gate (capacity, or the lock is held),
//! 4 aborted by the operator, 69 the registry or a node unreachable.

mod exec;
pub mod plan;

use std::process::ExitCode;

use clap::Args;

use crate::cli::SourceArgs;
pub use crate::exit::Exit;

/// `rtc roll`.
#[derive(Debug, Clone, Args)]
pub struct RollArgs {
    /// The cluster (--cluster NAME with --bus or --redis-url, or its [clusters.NAME] table in
    /// rtc.toml).
    #[command(flatten)]
    pub source: SourceArgs,

    /// Node ids in the order to roll them, comma-separated [default: registry order].
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub order: Vec<String>,

    /// Print the plan with the headroom arithmetic of every step and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Roll even when a step would put survivors past the planning line.
    #[arg(long)]
    pub force: bool,

    /// Command that restarts a node, `{node}` replaced by its id (e.g. 'systemctl restart
    /// rtc@{node}'); it must stop the node with SIGTERM (the paced drain). It runs without
    /// a shell: the template is split into words once (quotes as in sh), then `{node}` is
    /// replaced inside each word, so an id can never add arguments or commands. Only
    /// trusted registry entries are restarted. Without it, rtc asks the node to drain and
    /// expects a supervisor to start it again.
    #[arg(long, value_name = "CMD")]
    pub exec: Option<String>,

    /// Seconds to wait for one node to drain and come back.
    #[arg(long, value_name = "SECS", default_value_t = 180.0)]
    pub timeout: f64,

    /// Seconds a restarted node must stay serving before the next step.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub settle: f64,

    /// Start at this node (skip the ones before it in the order).
    #[arg(long, value_name = "NODE", conflicts_with = "resume")]
    pub from: Option<String>,

    /// Continue the interrupted roll recorded on the cluster's engine.
    #[arg(long)]
    pub resume: bool,

    /// Never cordon the nodes not yet rolled.
    #[arg(long)]
    pub no_cordon: bool,

    /// NDJSON events on stdout instead of lines.
    #[arg(long)]
    pub json: bool,
}

/// Runs `rtc roll`.
pub fn run_roll(args: RollArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rtc roll: cannot start the runtime: {e}");
            return Exit::Failed.into();
        }
    };
    rt.block_on(exec::run(args)).into()
}
