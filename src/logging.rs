//! Logging to stderr with tracing-subscriber: text or JSON, filtered by `RUST_LOG`
//! (default `info`).
//!
//! Log lines never block or panic the code that logs them. Each line is handed to a
//! bounded queue and written to stderr by one dedicated thread; when the queue is full
//! (stderr is slow or stuck) or stderr fails (its reader is gone: `EPIPE`), the line is
//! dropped and counted ([`dropped`], `rtc_log_lines_dropped_total`). So a log pipe that
//! goes away, a `| head`, or a collector that restarts cannot wedge the drain or stop the
//! node from exiting. (tracing-subscriber's own writer uses `eprintln!` for its internal
//! errors, which panics on a broken stderr: that panic killed the signal task and left a
//! node draining forever.)
//!
//! Colour (ANSI escape codes) only when stderr is a terminal and `NO_COLOR` is unset or
//! empty (<https://no-color.org>), so files, pipes and journald get plain text.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::OnceLock;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Lines the queue holds before new ones are dropped.
const QUEUE_LINES: usize = 8192;

/// Lines dropped because stderr was full, stuck or gone.
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// The queue to the writer thread (set by [`init`]).
static QUEUE: OnceLock<SyncSender<Item>> = OnceLock::new();

enum Item {
    Line(Vec<u8>),
    Flush(SyncSender<()>),
}

/// Log lines dropped so far (stderr full, stuck or closed).
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Whether log lines get ANSI colours: stderr is a terminal and `NO_COLOR` is unset or
/// empty.
pub fn use_colour() -> bool {
    colour_allowed(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR").as_deref())
}

fn colour_allowed(terminal: bool, no_colour: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_colour.is_none_or(|v| v.is_empty())
}

/// A writer that queues one line per write and never blocks or fails.
#[derive(Clone, Copy, Debug, Default)]
pub struct QueueWriter;

impl Write for QueueWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match QUEUE.get() {
            Some(q) => match q.try_send(Item::Line(buf.to_vec())) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    DROPPED.fetch_add(1, Ordering::Relaxed);
                }
            },
            None => {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for QueueWriter {
    type Writer = QueueWriter;

    fn make_writer(&'a self) -> Self::Writer {
        QueueWriter
    }
}

fn write_lines(rx: Receiver<Item>) {
    let mut err = std::io::stderr();
    for item in rx {
        match item {
            Item::Line(line) => {
                if err.write_all(&line).is_err() {
                    DROPPED.fetch_add(1, Ordering::Relaxed);
                }
            }
            Item::Flush(done) => {
                let _ = done.try_send(());
            }
        }
    }
}

/// Waits, at most `within`, until the lines queued so far are written (or dropped).
/// Called before the process exits so the last lines are not lost; bounded, so a stuck
/// stderr cannot hold up the exit.
pub fn flush(within: Duration) {
    let Some(q) = QUEUE.get() else { return };
    let (tx, rx) = sync_channel(1);
    if q.try_send(Item::Flush(tx)).is_ok() {
        let _ = rx.recv_timeout(within);
    }
}

/// Installs the global subscriber and starts the writer thread. Safe to call once per
/// process.
pub fn init(format: LogFormat) {
    if QUEUE.get().is_none() {
        let (tx, rx) = sync_channel(QUEUE_LINES);
        let started = std::thread::Builder::new().name("rtc-log".into()).spawn(move || write_lines(rx));
        if started.is_ok() {
            let _ = QUEUE.set(tx);
        }
    }
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(QueueWriter)
        .with_ansi(use_colour())
        .log_internal_errors(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour_allowed(true, None));
        assert!(colour_allowed(true, Some(std::ffi::OsStr::new(""))));
        assert!(!colour_allowed(true, Some(std::ffi::OsStr::new("1"))));
        assert!(!colour_allowed(false, None));
    }
}
