//! `rtc bench`: a Pusher-protocol load generator (being written).

use std::process::ExitCode;

/// Flags of `rtc bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {}

/// Runs a benchmark scenario.
pub fn run(_args: BenchArgs) -> ExitCode {
    eprintln!("rtc bench: the load generator is being written (issue 6); no scenario is available yet");
    ExitCode::from(2)
}
