//! The `rtc` binary: parse the command line, run the subcommand, map errors to exit codes.

use std::process::ExitCode;

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
                    eprintln!("rtc: cannot start the runtime: {e}");
                    return ExitCode::from(EXIT_FAILURE);
                }
            };
            match rt.block_on(rtc::serve::run(*args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(rtc::serve::ServeError::Config(e)) => {
                    eprint!("rtc: {e}");
                    ExitCode::from(EXIT_USAGE)
                }
                Err(e) => {
                    eprintln!("rtc: {e}");
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
