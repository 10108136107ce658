//! Child processes of the `rtc` binary, shared by the test files that run it: a clean
//! environment, the banner read off stdout with a bound, a bounded wait for the exit, and
//! the admin endpoints read with the admin token.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use super::{ADMIN_TOKEN, WAIT};

/// How long a node may take to print its banner.
pub const BANNER_WAIT: Duration = Duration::from_secs(20);

/// Removes the developer's `RTC_*`, `REVERB_*` and `REDIS_*` variables from `cmd`, so a
/// test sees only what it sets.
pub fn scrub_env(cmd: &mut Command) -> &mut Command {
    for (k, _) in std::env::vars() {
        if k.starts_with("RTC_") || k.starts_with("REVERB_") || k.starts_with("REDIS_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// The lines of `out` (a child's stdout or stderr), read on a thread so that every wait
/// for them can be bounded. The pipe closes once the receiver is dropped.
pub fn lines_of(out: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits at most `within` for a line that `pick` accepts and returns what it picked;
/// panics naming `what` if none comes in time.
pub fn wait_line<T>(rx: &Receiver<String>, within: Duration, what: &str, mut pick: impl FnMut(&str) -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|e| panic!("no {what} within {within:?}: {e}"));
        if let Some(v) = pick(&line) {
            return v;
        }
    }
}

/// Takes the child's (piped) stdout and waits, bounded by [`BANNER_WAIT`], for
/// `rtc listening on http://ADDR`; returns `ADDR`.
pub fn http_addr(child: &mut Child) -> String {
    let rx = lines_of(child.stdout.take().expect("stdout is piped"));
    wait_line(&rx, BANNER_WAIT, "'rtc listening on http://' line", |l| {
        l.strip_prefix("rtc listening on http://").map(|rest| rest.trim().to_string())
    })
}

/// Waits (bounded) for the child to exit: its exit code, or `None` if it is still
/// running after `within`.
pub async fn exit_within(child: &mut Child, within: Duration) -> Option<Option<i32>> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s.code());
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GET `url` with the admin token (bounded by [`WAIT`]).
pub async fn admin_get(http: &reqwest::Client, url: &str) -> reqwest::Response {
    http.get(url).bearer_auth(ADMIN_TOKEN).timeout(WAIT).send().await.unwrap()
}

/// The body of `{base}/metrics` (base: `http://ADDR` or `https://ADDR`), read with the
/// admin token.
pub async fn metrics_text(http: &reqwest::Client, base: &str) -> String {
    admin_get(http, &format!("{base}/metrics")).await.text().await.unwrap()
}

/// `{base}/admin/stats` as JSON, read with the admin token.
pub async fn admin_stats(http: &reqwest::Client, base: &str) -> serde_json::Value {
    admin_get(http, &format!("{base}/admin/stats")).await.json().await.unwrap()
}
