//! Drawing: `draw(frame, &State, &Theme)` and nothing else. No state changes, no I/O.
//!
//! Screen, top to bottom: header (source, link state, data age), alerts, the body
//! (nodes, channels, redis, timeline, or a node's detail), the key-hint footer. Dialogs go on top.

mod channels;
mod chrome;
mod detail;
mod nodes;
mod overlay;
mod redis;
mod timeline;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::Frame;

use super::state::{Overlay, State, View};
use super::theme::Theme;

/// Narrowest terminal the dashboard draws in (low-priority columns are dropped down to it).
pub const MIN_WIDTH: u16 = 60;
/// Lowest terminal the dashboard draws in.
pub const MIN_HEIGHT: u16 = 15;
/// The size it is designed for.
pub const DESIGN_SIZE: (u16, u16) = (80, 24);

/// Draws one frame.
pub fn draw(frame: &mut Frame<'_>, state: &State, theme: &Theme) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        overlay::too_small(frame, area, theme);
        return;
    }
    let alerts_h = chrome::alerts_height(state, area.height);
    let [header, alerts, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(alerts_h),
        Constraint::Min(4),
        Constraint::Length(1),
    ])
    .areas(area);
    chrome::header(frame, header, state, theme);
    chrome::alerts(frame, alerts, state, theme);
    draw_body(frame, body, state, theme);
    chrome::footer(frame, footer, state, theme);
    match &state.overlay {
        Some(Overlay::Help) => {
            let above_footer = Rect { height: area.height - 1, ..area };
            overlay::help(frame, above_footer, state, theme);
        }
        Some(Overlay::ConfirmDrain(h)) => overlay::confirm_drain(frame, body, h, theme),
        None => {}
    }
}

fn draw_body(frame: &mut Frame<'_>, area: Rect, state: &State, theme: &Theme) {
    if state.shown().is_none() {
        overlay::waiting(frame, area, state, theme);
        return;
    }
    if state.detail.is_some() {
        detail::draw(frame, area, state, theme);
        return;
    }
    match state.view {
        View::Nodes => nodes::draw(frame, area, state, theme),
        View::Channels => channels::draw(frame, area, state, theme),
        View::Redis => redis::draw(frame, area, state, theme),
        View::Timeline => timeline::draw(frame, area, state, theme),
    }
}

/// Truncates to `width` display cells, marking the cut with `…`.
fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}
