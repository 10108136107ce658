//! `update(state, event) -> effects`: every change to the dashboard's state, as a pure
//! function. No I/O and no clock: the loop in [`super`] carries out the [`Effect`]s.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent};

use crate::capacity;
use crate::cli::{MAX_INTERVAL, MIN_INTERVAL};
use crate::snapshot::ClusterSnapshot;

use super::keys::{self, Action, Context};
use super::state::{Dataset, Message, Overlay, State, View};

/// Seconds a footer message stays.
const MESSAGE_SECS: u64 = 6;
/// The interval steps `+` and `-` move through.
const INTERVAL_STEPS_MS: [u64; 7] = [250, 500, 1_000, 2_000, 5_000, 10_000, 30_000];

/// Something that happened.
#[derive(Debug, Clone)]
pub enum Event {
    /// A new poll from the collector.
    Snapshot(Box<ClusterSnapshot>),
    /// A key press.
    Key(KeyEvent),
    /// The clock moved (unix ms): data ages, messages fade.
    Tick(u64),
    /// The terminal changed size (the next draw adapts).
    Resize,
    /// A drain request finished.
    DrainDone {
        /// Node id.
        node: String,
        /// The node's answer or the error.
        result: Result<String, String>,
    },
}

/// Work for the loop to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Poll at this interval from now on.
    SetInterval(Duration),
    /// `POST {url}/admin/drain`.
    Drain {
        /// Node id.
        node: String,
        /// Its admin base URL.
        url: String,
    },
}

/// Applies one event.
pub fn update(state: &mut State, event: Event) -> Vec<Effect> {
    match event {
        Event::Snapshot(snap) => {
            ingest(state, &snap);
            Vec::new()
        }
        Event::Tick(now) => {
            state.now_ms = state.now_ms.max(now);
            expire_message(state);
            Vec::new()
        }
        Event::Resize => Vec::new(),
        Event::DrainDone { node, result } => {
            let (text, error) = match result {
                Ok(answer) => (format!("drain of {node} accepted: {answer}"), false),
                Err(e) => (format!("drain of {node} failed: {e}"), true),
            };
            say(state, text, error);
            Vec::new()
        }
        Event::Key(key) => on_key(state, key),
    }
}

fn ingest(state: &mut State, snap: &ClusterSnapshot) {
    state.now_ms = state.now_ms.max(snap.taken_ms);
    let figures = state.tracker.ingest(snap);
    let mut history = state.live.take().map(|d| d.history).unwrap_or_default();
    history.retain(|id, _| figures.nodes.iter().any(|n| &n.id == id));
    for n in figures.nodes.iter().filter(|n| n.health.is_live()) {
        history.entry(n.id.clone()).or_default().record(n);
    }
    state.live = Some(Dataset { figures, history });
    clamp_selection(state);
}

fn on_key(state: &mut State, key: KeyEvent) -> Vec<Effect> {
    if state.editing_filter {
        return edit_filter(state, key);
    }
    let context = match state.overlay {
        Some(Overlay::ConfirmDrain(_)) => Context::Confirm,
        _ => Context::Main,
    };
    let Some(action) = keys::action_for(keys::key_of(&key), context, state.write) else {
        if context == Context::Main && !state.write && keys::key_of(&key) == keys::Key::Char('d') {
            say(state, "read-only: start rtc top with --write to drain".to_string(), true);
        }
        return Vec::new();
    };
    apply(state, action)
}

/// Applies one action (what a key is bound to).
pub fn apply(state: &mut State, action: Action) -> Vec<Effect> {
    match action {
        Action::Quit => state.quit = true,
        Action::Help => {
            state.overlay = match state.overlay {
                Some(Overlay::Help) => None,
                _ => Some(Overlay::Help),
            }
        }
        Action::Up => state.selected = state.selected.saturating_sub(1),
        Action::Down => {
            state.selected = (state.selected + 1).min(state.row_count().saturating_sub(1));
        }
        Action::First => state.selected = 0,
        Action::Last => state.selected = state.row_count().saturating_sub(1),
        Action::Open => {
            if let Some(id) = state.selected_node().map(|n| n.id.clone()) {
                state.detail = Some(id);
                state.overlay = None;
            }
        }
        Action::Back => {
            if state.overlay.is_some() {
                state.overlay = None;
            } else if state.detail.is_some() {
                state.detail = None;
            } else if !state.filter.is_empty() {
                state.filter.clear();
                clamp_selection(state);
            }
        }
        Action::Sort => {
            state.sort = state.sort.next();
            state.view = View::Nodes;
        }
        Action::NextView | Action::PrevView => {
            state.view = if action == Action::NextView { state.view.next() } else { state.view.prev() };
            state.detail = None;
            state.selected = 0;
        }
        Action::Filter => {
            state.editing_filter = true;
            state.overlay = None;
        }
        Action::Freeze => {
            if state.frozen.take().is_none() {
                state.frozen = state.live.clone();
            }
            clamp_selection(state);
        }
        Action::Slower | Action::Faster => return step_interval(state, action == Action::Slower),
        Action::Drain => ask_drain(state),
        Action::Confirm | Action::ConfirmAnyway => return confirm_drain(state, action == Action::ConfirmAnyway),
        Action::Cancel => {
            state.overlay = None;
            say(state, "drain cancelled".to_string(), false);
        }
    }
    Vec::new()
}

fn edit_filter(state: &mut State, key: KeyEvent) -> Vec<Effect> {
    if keys::key_of(&key) == keys::Key::Ctrl('c') {
        state.quit = true;
        return Vec::new();
    }
    match key.code {
        KeyCode::Enter => state.editing_filter = false,
        KeyCode::Esc => {
            state.editing_filter = false;
            state.filter.clear();
        }
        KeyCode::Backspace => {
            state.filter.pop();
        }
        KeyCode::Char(c) if !c.is_control() && state.filter.chars().count() < 40 => state.filter.push(c),
        _ => {}
    }
    state.selected = 0;
    Vec::new()
}

fn step_interval(state: &mut State, slower: bool) -> Vec<Effect> {
    let ms = state.interval.as_millis() as u64;
    let next = if slower {
        INTERVAL_STEPS_MS.iter().copied().find(|&s| s > ms)
    } else {
        INTERVAL_STEPS_MS.iter().rev().copied().find(|&s| s < ms)
    };
    let Some(next) = next else {
        return Vec::new();
    };
    let d = Duration::from_millis(next).clamp(MIN_INTERVAL, MAX_INTERVAL);
    state.interval = d;
    say(state, format!("polling every {}", crate::units::millis(next as f64)), false);
    vec![Effect::SetInterval(d)]
}

fn ask_drain(state: &mut State) {
    // The check runs on live data even when the display is frozen.
    let Some(id) = state.detail.clone().or_else(|| state.selected_node().map(|n| n.id.clone())) else {
        say(state, "select a node to drain".to_string(), true);
        return;
    };
    let Some(live) = &state.live else { return };
    match capacity::drain_headroom(&live.figures, &id) {
        Some(h) => state.overlay = Some(Overlay::ConfirmDrain(h)),
        None => say(state, format!("{id} is no longer in the cluster"), true),
    }
}

fn confirm_drain(state: &mut State, anyway: bool) -> Vec<Effect> {
    let Some(Overlay::ConfirmDrain(h)) = state.overlay.clone() else {
        return Vec::new();
    };
    if !h.ok && !anyway {
        say(state, "capacity check failed: press Y to drain anyway, n to keep the node".to_string(), true);
        return Vec::new();
    }
    state.overlay = None;
    match h.url {
        Some(url) => {
            say(state, format!("drain of {} requested…", h.node), false);
            vec![Effect::Drain { node: h.node, url }]
        }
        None => {
            say(state, format!("no admin URL known for {}", h.node), true);
            Vec::new()
        }
    }
}

fn say(state: &mut State, text: String, error: bool) {
    state.message = Some(Message { text, error, at_ms: state.now_ms });
}

fn expire_message(state: &mut State) {
    if state.message.as_ref().is_some_and(|m| state.now_ms.saturating_sub(m.at_ms) >= MESSAGE_SECS * 1000) {
        state.message = None;
    }
}

fn clamp_selection(state: &mut State) {
    state.selected = state.selected.min(state.row_count().saturating_sub(1));
}
