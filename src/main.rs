//! The `rtc` binary: parse the command line, run the subcommand, map errors to exit codes.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use rtc::cli::{Cli, Command};

/// Exit code for usage and configuration errors.
const EXIT_USAGE: u8 = 2;
/// Exit code for runtime failures.
const EXIT_FAILURE: u8 = 1;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    say(format_args!("rtc: cannot start the runtime: {e}\n"));
                    return ExitCode::from(EXIT_FAILURE);
                }
            };
            let result = rt.block_on(rtc::serve::run(*args));
            // Tasks still running (a socket mid-close) do not hold up the exit.
            rt.shutdown_timeout(Duration::from_secs(1));
            rtc::logging::flush(Duration::from_secs(1));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(rtc::serve::ServeError::Config(e)) => {
                    say(format_args!("rtc: {e}"));
                    ExitCode::from(EXIT_USAGE)
                }
                Err(e) => {
                    say(format_args!("rtc: {e}\n"));
                    ExitCode::from(EXIT_FAILURE)
                }
            }
        }
        Command::Top(args) => rtc_console::run_top(args),
        Command::Status(args) => rtc_console::run_status(args),
        Command::Drain(args) => rtc_console::run_drain(args),
        Command::Roll(args) => rtc_console::run_roll(args),
        Command::Bench(args) => rtc::bench::run(args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "rtc", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man { subcommand } => rtc::manpage::print(subcommand.as_deref()),
    }
}

/// Writes to stderr, ignoring errors: `eprintln!` panics when stderr's reader is gone.
fn say(text: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().write_fmt(text);
}
