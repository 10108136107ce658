//! `rtc top`: the live dashboard.
//!
//! One pipeline and no locks (vector top, bottom): the collector task sends snapshots,
//! terminal events and a 1 s tick arrive on the same `select!`, [`update::update`]
//! applies each to [`state::State`], and [`view::draw`] redraws. Redraws happen on
//! events only; ratatui diffs frames, so nothing flickers.

pub mod keys;
pub mod state;
pub mod terminal;
pub mod theme;
pub mod update;
pub mod view;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};

use crate::cli::{Resolved, TopArgs};
use crate::collect::{self, Collector};
use crate::exit::Exit;
use crate::figures::Thresholds;

use state::State;
use theme::Theme;
use update::{update, Effect, Event};

/// Runs `rtc top` until the user quits. Exit codes: 0 after `q`, 2 for bad flags or
/// when stdin/stdout is not a terminal (use `rtc status`), 1 when the terminal fails.
pub fn run_top(args: TopArgs) -> ExitCode {
    let resolved = match args.source.resolve() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rtc top: {e}");
            return Exit::Usage.into();
        }
    };
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        eprintln!(
            "rtc top: not a terminal. For scripts and pipes use `rtc status` (a table) or \
             `rtc status --json`, with the same source flags."
        );
        return Exit::Usage.into();
    }
    let theme = Theme::from_env(args.no_color);
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rtc top: cannot start the runtime: {e}");
            return Exit::Failed.into();
        }
    };
    match rt.block_on(run(resolved, args.write, theme)) {
        Ok(()) => Exit::Ok.into(),
        Err(e) => {
            eprintln!("rtc top: {e}");
            Exit::Failed.into()
        }
    }
}

async fn run(resolved: Resolved, write: bool, theme: Theme) -> Result<(), String> {
    let collector = Collector::new(&resolved.source, resolved.token.clone())?.with_seeds(&resolved.seeds);
    let admin = collector.admin().clone();
    let (snap_tx, mut snap_rx) = mpsc::channel(4);
    let (interval_tx, interval_rx) = watch::channel(resolved.interval);
    let collector_task = collect::spawn(collector, interval_rx, snap_tx);
    let (drain_tx, mut drain_rx) = mpsc::channel(4);

    let thresholds = Thresholds { planning_line: resolved.planning_line, ..Thresholds::default() };
    let mut state = State::new(resolved.source.label(), resolved.interval, write, thresholds);
    state.now_ms = collect::now_ms();

    let mut guard = terminal::TerminalGuard::enter().map_err(|e| format!("cannot set up the terminal: {e}"))?;
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut terminate = signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hangup = signal(tokio::signal::unix::SignalKind::hangup())?;

    let result = loop {
        if let Err(e) = guard.terminal.draw(|f| view::draw(f, &state, &theme)) {
            break Err(format!("cannot draw: {e}"));
        }
        let event = tokio::select! {
            snap = snap_rx.recv() => match snap {
                Some(s) => Event::Snapshot(Box::new(s)),
                None => break Err("the collector stopped".to_string()),
            },
            input_event = input.next() => match input_event {
                Some(Ok(TermEvent::Key(k))) if k.kind != KeyEventKind::Release => Event::Key(k),
                Some(Ok(TermEvent::Resize(..))) => Event::Resize,
                Some(Ok(_)) => continue,
                Some(Err(e)) => break Err(format!("cannot read the terminal: {e}")),
                None => break Ok(()),
            },
            _ = tick.tick() => Event::Tick(collect::now_ms()),
            Some((node, result)) = drain_rx.recv() => Event::DrainDone { node, result },
            _ = terminate.recv() => break Ok(()),
            _ = hangup.recv() => break Ok(()),
        };
        for effect in update(&mut state, event) {
            match effect {
                Effect::SetInterval(d) => {
                    let _ = interval_tx.send(d);
                }
                Effect::Drain { node, url } => {
                    let admin = admin.clone();
                    let tx = drain_tx.clone();
                    tokio::spawn(async move {
                        let result = admin.request_drain(&url).await;
                        let _ = tx.send((node, result)).await;
                    });
                }
            }
        }
        if state.quit {
            break Ok(());
        }
    };
    collector_task.abort();
    drop(guard);
    result
}

fn signal(kind: tokio::signal::unix::SignalKind) -> Result<tokio::signal::unix::Signal, String> {
    tokio::signal::unix::signal(kind).map_err(|e| format!("cannot watch signals: {e}"))
}
