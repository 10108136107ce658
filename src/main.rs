//! The `rtc` binary: parse the command line, run the subcommand, map errors to exit codes.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
use rtc::cli::{Cli, Command};

/// Exit code for usage and configuration errors.
const EXIT_USAGE: u8 = 2;
/// Exit code for runtime failures.
const EXIT_FAILURE: u8 = 1;

fn main() -> ExitCode {
    let cli = parse();
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

/// Parses the command line; records which `rtc serve` values came from the environment,
/// and names the variable when one of them is invalid.
fn parse() -> Cli {
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => exit_clap(e),
    };
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => exit_clap(e),
    };
    if let (Command::Serve(args), Some(("serve", sub))) = (&mut cli.command, matches.subcommand()) {
        args.from_env = sub
            .ids()
            .filter(|id| sub.value_source(id.as_str()) == Some(ValueSource::EnvVariable))
            .map(|id| id.to_string())
            .collect();
    }
    cli
}

/// Prints a command-line error and exits (code 2 for usage errors). When the bad value
/// came from an environment variable (clap reports it under the flag's name), the
/// message names the variable.
fn exit_clap(e: clap::Error) -> ! {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(e.kind(), ErrorKind::ValueValidation | ErrorKind::InvalidValue) {
        if let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) {
            if let Some(var) = env_behind(arg) {
                let text = e.to_string();
                let text =
                    text.replacen(&format!("'{arg}'"), &format!("'{arg}' (set by the environment variable {var})"), 1);
                say(format_args!("{text}"));
                std::process::exit(i32::from(EXIT_USAGE));
            }
        }
    }
    e.exit()
}

/// The environment variable that supplied `arg` (clap's `--flag <VALUE>` form), when the
/// flag itself is not on the command line.
fn env_behind(arg: &str) -> Option<String> {
    let long = arg.strip_prefix("--")?.split([' ', '=']).next()?;
    let argv: Vec<String> = std::env::args().collect();
    if argv.iter().any(|a| a == &format!("--{long}") || a.starts_with(&format!("--{long}="))) {
        return None;
    }
    let cmd = Cli::command();
    let found = cmd
        .get_subcommands()
        .flat_map(|sc| sc.get_arguments())
        .chain(cmd.get_arguments())
        .find(|a| a.get_long() == Some(long))?
        .get_env()?
        .to_string_lossy()
        .into_owned();
    std::env::var_os(&found).is_some().then_some(found)
}
