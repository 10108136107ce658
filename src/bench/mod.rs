//! `rtc bench`: a Pusher-protocol (v7) load generator that measures a node's real
//! planning number: sockets per node, memory per socket, fan-out latency, presence cost.
//!
//! It is a client like any other: it speaks the wire protocol, signs private and presence
//! subscriptions and HTTP API requests with the app secret (reusing
//! [`crate::protocol::auth`]), and never touches server internals, so it loads any
//! Pusher-compatible server (Reverb, Soketi, Sockudo) the same way.
//!
//! # Layout
//! * `args`: the flags. `target`: URL, app, source addresses. `host`: file limit,
//!   ports, `/proc` CPU and RSS readings.
//! * `client`: one socket's task. `swarm`: the state sockets share and the paced ramp.
//! * `reconnect`: a drain socket that reconnects to the survivors as pusher-js does.
//! * `publish`: signed HTTP publishing. `churn`: presence joins and leaves.
//! * `book`: delivery accounting. `timeline`: a drain's closes, arrivals and auth
//!   requests per 100 ms, and their busiest second. `histogram`: lock-free latency
//!   percentiles.
//! * `runner`: ramp → steady phase → report, shared by the `scenario`s.
//! * `report`: the figures, the bottleneck verdict, table and JSON.

mod args;
mod book;
mod churn;
mod client;
mod histogram;
mod host;
mod node_fanout;
mod publish;
mod reconnect;
mod report;
mod runner;
mod scenario;
mod swarm;
mod target;
mod timeline;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

pub use args::{
    ChannelKind, CommonArgs, ConnectionsArgs, DrainArgs, DrainWith, FanoutArgs, MixedArgs, PresenceArgs, Scenario,
};

/// Exit code when the run could not start or no socket became ready.
const EXIT_FAILURE: u8 = 1;
/// Exit code for a bad flag value.
const EXIT_USAGE: u8 = 2;
/// Grace after `--duration` before the run is abandoned; the scenario normally stops
/// itself before `--duration`.
const OVERRUN_GRACE: Duration = Duration::from_secs(10);

/// Flags of `rtc bench`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = "Every scenario ramps its sockets at --rate, runs a steady phase of --hold (drain: \
follows node A's drain until every socket is back), and stops by itself within --duration. The generator raises its open-file limit to the hard limit and prints the limits it \
hit; past one address's ephemeral ports it spreads loopback sockets over 127.0.0.x. Give --server-pid for the \
server's RSS per socket and CPU (drain: node A's process, for --drain-with signal|kill). The verdict says whether the server or the generator was the bottleneck.\n\n\
Examples:\n  rtc bench connections -n 19000 --rate 2000 --hold 30s --server-pid $(pgrep -n rtc)\n  \
rtc bench fanout -s 10000 -b 10 --hold 20s --json\n  rtc bench presence -m 1000 -j 15\n  \
rtc bench mixed -n 19000 -g 250 -e 200 -m 1000 -j 15 --hold 30s\n  \
rtc bench drain -n 10000 --url ws://127.0.0.1:8081 --survivor ws://127.0.0.1:8082 \\\n      \
--survivor ws://127.0.0.1:8083 --drain-with signal --server-pid $PID_OF_8081")]
pub struct BenchArgs {
    /// Flags shared by every scenario.
    #[command(flatten)]
    pub common: CommonArgs,
    /// The scenario to run.
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// `--url` is unusable.
    #[error("'--url' = '{url}': {why}")]
    BadUrl {
        /// The value given.
        url: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The host name does not resolve.
    #[error("cannot resolve '{host}': {source}")]
    Resolve {
        /// The host.
        host: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// `--server-pid` names no readable process.
    #[error("'--server-pid' = '{pid}': cannot read /proc/{pid}: {source}")]
    ServerPid {
        /// The pid given.
        pid: u32,
        /// The read error.
        source: std::io::Error,
    },
    /// The generator's own `/proc/self` is unreadable.
    #[error("cannot read /proc/self (is /proc mounted?): {0}")]
    OwnProc(std::io::Error),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(reqwest::Error),
    /// Publishing was asked of a scenario without an event book (a bug).
    #[error("internal: publishing without an event book")]
    NoEventBook,
    /// The drain scenario ran without its drain book (a bug).
    #[error("internal: a drain without a drain book")]
    NoDrainBook,
    /// Flags that cannot work together.
    #[error("{0}")]
    Usage(String),
    /// Node A could not be made to drain (refused, unreachable, no such process).
    #[error("cannot trigger the drain: {0}")]
    Trigger(String),
    /// The tokio runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// The scenario did not stop within `--duration` plus a grace period.
    #[error("the run did not stop within --duration + {0:?}; abandoned")]
    Overran(Duration),
    /// `--save` could not be written.
    #[error("'--save' = '{}': {source}", path.display())]
    Save {
        /// The file.
        path: std::path::PathBuf,
        /// The write error.
        source: std::io::Error,
    },
    /// Writing the report failed.
    #[error("cannot write the report: {0}")]
    Output(std::io::Error),
}

impl BenchError {
    fn exit_code(&self) -> ExitCode {
        match self {
            BenchError::BadUrl { .. } | BenchError::ServerPid { .. } | BenchError::Usage(_) => {
                ExitCode::from(EXIT_USAGE)
            }
            _ => ExitCode::from(EXIT_FAILURE),
        }
    }
}

/// Runs a benchmark scenario on its own multi-threaded runtime and prints the report
/// (a table, or JSON with `--json`) on stdout. Exit code 0 when the scenario ran, 1
/// when it could not start or no socket became ready, 2 for a bad flag value.
pub fn run(args: BenchArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(&BenchError::Runtime(e)),
    };
    let limit = args.common.duration + OVERRUN_GRACE;
    let result = runtime.block_on(async {
        match tokio::time::timeout(limit, run_scenario(&args)).await {
            Ok(r) => r,
            Err(_) => Err(BenchError::Overran(OVERRUN_GRACE)),
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    let report = match result {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let json = match serde_json::to_string_pretty(&report) {
        Ok(mut s) => {
            s.push('\n');
            s
        }
        Err(e) => return fail(&BenchError::Output(std::io::Error::other(e))),
    };
    if let Some(path) = &args.common.save {
        if let Err(source) = std::fs::write(path, &json) {
            return fail(&BenchError::Save { path: path.clone(), source });
        }
    }
    let text = if args.common.json { json } else { report.render() };
    let written = std::io::stdout().lock().write_all(text.as_bytes());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => return fail(&BenchError::Output(e)),
    }
    if report.connections.ready == 0 {
        eprintln!("rtc bench: no socket became ready; see the failures above");
        return ExitCode::from(EXIT_FAILURE);
    }
    ExitCode::SUCCESS
}

fn fail(e: &BenchError) -> ExitCode {
    eprintln!("rtc bench: {e}");
    e.exit_code()
}

async fn run_scenario(args: &BenchArgs) -> Result<report::Report, BenchError> {
    let common = &args.common;
    match &args.scenario {
        Scenario::Connections(a) => scenario::connections::run(common, a).await,
        Scenario::Fanout(a) => scenario::fanout::run(common, a).await,
        Scenario::Presence(a) => scenario::presence::run(common, a).await,
        Scenario::Mixed(a) => scenario::mixed::run(common, a).await,
        Scenario::Drain(a) => scenario::drain::run(common, a).await,
    }
}
