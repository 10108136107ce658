//! Whole-screen and dialog states: too small, waiting for data, help, drain confirmation.

use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use crate::capacity::Headroom;
use crate::top::keys;
use crate::top::state::State;
use crate::top::theme::Theme;

use super::{DESIGN_SIZE, MIN_HEIGHT, MIN_WIDTH};

/// btop's screen: what we have, what we need, how to leave.
pub(super) fn too_small(frame: &mut Frame<'_>, area: Rect, theme: &Theme) {
    let have_ok_w = area.width >= MIN_WIDTH;
    let have_ok_h = area.height >= MIN_HEIGHT;
    let style = |ok: bool| if ok { theme.ok() } else { theme.crit() };
    let lines = vec![
        Line::styled("terminal too small", theme.title()),
        Line::from(vec![
            Span::raw("have "),
            Span::styled(area.width.to_string(), style(have_ok_w)),
            Span::raw("×"),
            Span::styled(area.height.to_string(), style(have_ok_h)),
            Span::raw(format!(", need {MIN_WIDTH}×{MIN_HEIGHT}")),
        ]),
        Line::styled(format!("({}×{} recommended)", DESIGN_SIZE.0, DESIGN_SIZE.1), theme.dim()),
        Line::styled("q quits", theme.dim()),
    ];
    let h = lines.len() as u16;
    let y = area.y + area.height.saturating_sub(h) / 2;
    let rect = Rect { y, height: h.min(area.height), ..area };
    frame.render_widget(Paragraph::new(lines).alignment(Alignment::Center).wrap(Wrap { trim: true }), rect);
}

/// Before the first snapshot.
pub(super) fn waiting(frame: &mut Frame<'_>, area: Rect, state: &State, theme: &Theme) {
    let lines = vec![
        Line::default(),
        Line::styled(format!("  waiting for the first poll of {}…", state.source_label), theme.dim()),
    ];
    frame.render_widget(Paragraph::new(lines), area);
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}

/// Key reference and glyph legend, generated from the key table.
pub(super) fn help(frame: &mut Frame<'_>, area: Rect, state: &State, theme: &Theme) {
    let mut lines: Vec<Line<'_>> = keys::help_lines(state.write)
        .into_iter()
        .map(|(k, help)| Line::from(vec![Span::styled(format!(" {k:<11}"), theme.key()), Span::raw(help)]))
        .collect();
    if !state.write {
        lines.push(Line::styled(" read-only: start with --write to drain from here", theme.dim()));
    }
    lines.push(Line::default());
    lines.push(Line::from(" ● serving ○ starting ◐ draining ◑ cordoned ◆ degraded"));
    lines.push(Line::from(" ◌ drained (exited after a drain) ✖ down ↻ restarted ⚠ untrusted"));
    lines.push(Line::from(" ┃ planning line  ▓ past it  ! near  ▲ over  ↑ buffer rising"));
    // The column glossary, as much as the screen holds.
    let room = (area.height as usize).saturating_sub(lines.len() + 3);
    if room > 1 {
        lines.push(Line::default());
        for (col, what) in keys::COLUMNS.iter().take(room - 1) {
            lines.push(Line::from(vec![Span::styled(format!(" {col:<17}"), theme.title()), Span::raw(*what)]));
        }
    }
    let rect = centered(area, 76, lines.len() as u16 + 2);
    frame.render_widget(Clear, rect);
    let block = Block::default().borders(Borders::ALL).title(Span::styled(" help · Esc or ? closes ", theme.title()));
    frame.render_widget(Paragraph::new(lines).block(block), rect);
}

/// "Drain this node?" with the capacity check stated.
pub(super) fn confirm_drain(frame: &mut Frame<'_>, area: Rect, h: &Headroom, theme: &Theme) {
    let (verdict, style) = if h.ok {
        ("✓ survivors stay under the planning line", theme.ok())
    } else {
        ("✖ survivors would go past the planning line", theme.crit())
    };
    let keys_line = if h.ok {
        Line::from(vec![
            Span::styled(" y", theme.key()),
            Span::raw(" drain   "),
            Span::styled("n/Esc", theme.key()),
            Span::raw(" cancel"),
        ])
    } else {
        Line::from(vec![
            Span::styled(" Y", theme.key()),
            Span::raw(" drain anyway   "),
            Span::styled("n/Esc", theme.key()),
            Span::raw(" cancel"),
        ])
    };
    let lines = vec![
        Line::from(format!(" {}", h.summary())),
        Line::styled(format!(" {verdict}"), style),
        Line::styled(format!(" POST {}/admin/drain", h.url.as_deref().unwrap_or("(no admin URL known)")), theme.dim()),
        Line::default(),
        keys_line,
    ];
    let rect = centered(area, area.width.saturating_sub(4).min(76), 8);
    frame.render_widget(Clear, rect);
    let block =
        Block::default().borders(Borders::ALL).title(Span::styled(format!(" drain {}? ", h.node), theme.warn()));
    frame.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: false }), rect);
}
