//! How a node drains: [`DrainConfig`] and its resolution.

use super::{DrainSection, Resolver};
use crate::cli::ServeArgs;

/// How a node drains (SIGTERM, SIGINT, `rtc drain`).
#[derive(Debug, Clone, PartialEq)]
pub struct DrainConfig {
    /// Between the health flip and the first hint.
    pub pre_delay: std::time::Duration,
    /// Hints are spread over this window.
    pub window: std::time::Duration,
    /// At most this many hints per second (0 = no cap).
    pub rate: u64,
    /// From the start of the drain to the forced close and exit.
    pub timeout: std::time::Duration,
    /// How long a drained presence member is kept for a migrating client.
    pub presence_grace: std::time::Duration,
    /// Send `pusher:error` 4200 before the close frame.
    pub send_error: bool,
}

impl Default for DrainConfig {
    fn default() -> Self {
        DrainConfig {
            pre_delay: std::time::Duration::from_secs(5),
            window: std::time::Duration::from_secs(15),
            rate: 0,
            timeout: std::time::Duration::from_secs(25),
            presence_grace: std::time::Duration::from_secs(10),
            send_error: false,
        }
    }
}

pub(super) fn resolve_drain(r: &mut Resolver<'_>, args: &ServeArgs, file: &DrainSection) -> DrainConfig {
    let d = DrainConfig::default();
    let mut secs = |name: &str, id: &str, flag: Option<f64>, file: Option<f64>, default: std::time::Duration| {
        let v = flag.or(file).unwrap_or(default.as_secs_f64());
        if !(0.0..=3600.0).contains(&v) || v.is_nan() {
            let long = format!("--{}", id.replace('_', "-"));
            let rtc = format!("RTC_{}", id.to_ascii_uppercase());
            let names = [&long, &rtc, "", &format!("drain.{name}")];
            r.err_from(args, flag.is_some(), id, names, format!("{v} is out of range 0..=3600 seconds"));
            return default;
        }
        std::time::Duration::from_secs_f64(v)
    };
    let pre_delay = secs("pre_drain_delay", "pre_drain_delay", args.pre_drain_delay, file.pre_drain_delay, d.pre_delay);
    let window = secs("window", "drain_window", args.drain_window, file.window, d.window);
    let timeout = secs("timeout", "drain_timeout", args.drain_timeout, file.timeout, d.timeout);
    let presence_grace = secs(
        "presence_grace",
        "drain_presence_grace",
        args.drain_presence_grace,
        file.presence_grace,
        d.presence_grace,
    );
    if pre_delay + window > timeout {
        r.err(
            "drain.timeout",
            format!(
                "{}s is shorter than pre_drain_delay + window ({}s): the hints would not finish before the forced close",
                timeout.as_secs_f64(),
                (pre_delay + window).as_secs_f64()
            ),
        );
    }
    DrainConfig {
        pre_delay,
        window,
        rate: args.drain_rate.or(file.rate).unwrap_or(0),
        timeout,
        presence_grace,
        send_error: file.send_error.unwrap_or(false),
    }
}
