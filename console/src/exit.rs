//! The exit codes of every console command, in one table (README "Console" lists them).

use std::process::ExitCode;

/// How `rtc status`, `rtc top`, `rtc drain` and `rtc roll` exit. Each command uses the
/// codes that apply to it; a code means the same thing in every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// All good (`status`), the dashboard was closed (`top`), drained (`drain`, or
    /// started with `--no-wait`), rolled or the dry-run plan passes (`roll`).
    Ok = 0,
    /// A warning or critical alert fired (`status`); a runtime failure (`top`); a node
    /// did not drain or come back in time (`drain`, `roll`).
    Failed = 1,
    /// Bad flags or config, an unknown node, or `top` without a terminal.
    Usage = 2,
    /// Refused by a gate: capacity, the last serving node, an untrusted registry entry,
    /// the node itself (already draining, bad token), or another roll's lock.
    Refused = 3,
    /// Stopped by the operator (Ctrl-C) between roll steps.
    Aborted = 4,
    /// Redis or the nodes cannot be reached (EX_UNAVAILABLE).
    Unavailable = 69,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::Exit;

    #[test]
    fn the_codes_are_the_documented_numbers() {
        let codes: Vec<u8> = [Exit::Ok, Exit::Failed, Exit::Usage, Exit::Refused, Exit::Aborted, Exit::Unavailable]
            .iter()
            .map(|e| *e as u8)
            .collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 69]);
    }
}
