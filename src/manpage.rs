//! `rtc man`: roff man pages generated from the clap definitions.

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::Cli;

/// Renders rtc(1), or `rtc-SUB(1)` for a subcommand.
///
/// # Errors
/// An unknown subcommand name.
pub fn render(subcommand: Option<&str>) -> Result<Vec<u8>, String> {
    // The package version only: pages must not change with every commit (they are
    // committed and checked against the code).
    let cmd = Cli::command().version(env!("CARGO_PKG_VERSION"));
    let page = match subcommand {
        None => cmd,
        Some(name) => {
            let sub = cmd.find_subcommand(name).cloned().ok_or_else(|| format!("no subcommand '{name}'"))?;
            sub.name(format!("rtc-{name}")).version(env!("CARGO_PKG_VERSION"))
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page).render(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Names of the subcommands that get their own page.
pub fn subcommands() -> Vec<String> {
    Cli::command().get_subcommands().map(|c| c.get_name().to_string()).filter(|n| n != "help").collect()
}

/// Prints a page to stdout; exit 2 for an unknown subcommand.
pub fn print(subcommand: Option<&str>) -> ExitCode {
    match render(subcommand) {
        Ok(page) => {
            let _ = std::io::stdout().write_all(&page);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rtc man: {e}");
            ExitCode::from(2)
        }
    }
}
