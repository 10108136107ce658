//! The timeline view: what the nodes recorded in the cluster's incident stream (starts,
//! restarts, drains, reaps, Redis link losses), newest first, scrolled with the
//! selection. Times are UTC, as in the nodes' logs.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::top::state::State;
use crate::top::theme::Theme;

/// `HH:MM:SS` (UTC) of a unix-ms time.
pub(super) fn clock(ms: u64) -> String {
    let secs = (ms / 1000) % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

pub(super) fn draw(frame: &mut Frame<'_>, area: Rect, state: &State, theme: &Theme) {
    let Some(d) = state.shown() else { return };
    let entries = state.timeline();
    let mut lines = vec![Line::from(vec![
        Span::styled("nodes · channels · redis · ", theme.dim()),
        Span::styled(format!("timeline ({}, newest first, UTC)", entries.len()), theme.title()),
    ])];
    let w = area.width as usize;
    if d.figures.redis.is_none() {
        lines.push(Line::styled(
            "  no Redis in this source (--node mode): nodes write the timeline there.",
            theme.dim(),
        ));
        frame.render_widget(Paragraph::new(lines), area);
        return;
    }
    if let Some(r) = d.figures.redis.as_ref().filter(|r| !r.has(crate::snapshot::NOT_AVAILABLE_TIMELINE)) {
        let why = format!(
            "  the timeline is {}: its nodes log the events (kind, node, detail) instead.",
            r.not_available_text()
        );
        lines.push(Line::styled(super::fit(&why, w), theme.dim()));
        frame.render_widget(Paragraph::new(lines), area);
        return;
    }
    if entries.is_empty() {
        let why = match d.figures.redis.as_ref().filter(|r| r.error.is_some()) {
            Some(r) => format!("  {} is unreachable: the timeline is kept there.", r.engine.as_str()),
            None => "  nothing recorded yet.".to_string(),
        };
        lines.push(Line::styled(why, theme.dim()));
        frame.render_widget(Paragraph::new(lines), area);
        return;
    }
    let rows = area.height.saturating_sub(1) as usize;
    // Keep the selection on screen.
    let first = state.selected.saturating_sub(rows.saturating_sub(1));
    let node_w = entries.iter().map(|e| e.node.chars().count()).max().unwrap_or(4).clamp(4, 12);
    for (i, e) in entries.iter().enumerate().skip(first).take(rows) {
        let style = match e.kind.as_str() {
            "node_reaped" | "stopped" => theme.crit(),
            "restarted" | "redis_restored" => theme.warn(),
            _ => theme.text(),
        };
        let text = format!("{} {:<node_w$} {:<14} {}", clock(e.ts_ms), super::fit(&e.node, node_w), e.kind, e.detail);
        let line = Line::styled(super::fit(&text, w), style);
        lines.push(if i == state.selected { line.patch_style(theme.selected()) } else { line });
    }
    frame.render_widget(Paragraph::new(lines), area);
}

#[cfg(test)]
mod tests {
    #[test]
    fn clock_is_utc_time_of_day() {
        assert_eq!(super::clock(1_800_000_000_000), "08:00:00");
        assert_eq!(super::clock(3_723_000), "01:02:03");
    }
}
