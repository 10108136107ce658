//! The channels view: the most expensive channels by frames out per second, merged over
//! nodes. A big presence channel is flagged: every join or leave costs one frame per
//! member, and a "users online" badge only needs `subscription_count`.

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use crate::figures::ChannelFigures;
use crate::top::state::State;
use crate::top::theme::Theme;
use crate::units;

/// Presence channels with at least this many members are flagged.
const BIG_PRESENCE: u64 = 1_000;

fn is_big_presence(c: &ChannelFigures) -> bool {
    c.kind == "presence" && c.members >= BIG_PRESENCE
}

pub(super) fn draw(frame: &mut Frame<'_>, area: Rect, state: &State, theme: &Theme) {
    let channels = state.visible_channels();
    let big = channels.iter().find(|c| is_big_presence(c));
    let note_h = u16::from(big.is_some()) * 2;
    let [title_a, table_a, note_a] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(2), Constraint::Length(note_h)]).areas(area);

    let mut title = vec![
        Span::styled("nodes · ", theme.dim()),
        Span::styled(format!("channels ({})", channels.len()), theme.title()),
        Span::styled(" · redis · timeline", theme.dim()),
        Span::raw(" · by frames out/s (each node's top 20)"),
    ];
    if !state.filter.is_empty() {
        title.push(Span::styled(format!(" · filter '{}'", state.filter), theme.warn()));
    }
    frame.render_widget(Paragraph::new(Line::from(title)), title_a);

    let wide = area.width >= 100;
    // The other columns and one space before each.
    let fixed: u16 = if wide { 50 } else { 40 };
    let name_w = area.width.saturating_sub(fixed).max(12);
    let mut widths = vec![Constraint::Length(name_w)];
    if wide {
        widths.push(Constraint::Length(9));
    }
    widths.extend([9, 7, 7, 7, 5].map(Constraint::Length));
    let right = |s: String| Cell::from(Line::from(s).alignment(Alignment::Right));
    let mut head = vec![Cell::from("CHANNEL")];
    if wide {
        head.push(Cell::from("APP"));
    }
    head.extend([
        Cell::from("TYPE"),
        right("SUBS".into()),
        right("MEMBERS".into()),
        right("OUT/S".into()),
        right("NODES".into()),
    ]);
    let rows = channels.iter().map(|c| {
        let flag = if is_big_presence(c) { "! " } else { "  " };
        let mut cells = vec![Cell::from(super::fit(&format!("{flag}{}", c.name), name_w as usize))];
        if wide {
            cells.push(Cell::from(super::fit(&c.app, 9)));
        }
        cells.extend([
            Cell::from(c.kind.clone()),
            right(units::count(c.subscribers)),
            right(if c.members > 0 { units::count(c.members) } else { "–".into() }),
            right(units::rate(c.frames_out_per_s)),
            right(c.nodes.to_string()),
        ]);
        let row = Row::new(cells);
        if is_big_presence(c) {
            row.style(theme.warn())
        } else {
            row
        }
    });
    let table = Table::new(rows, widths)
        .header(Row::new(head).style(theme.title()))
        .column_spacing(1)
        .row_highlight_style(theme.selected());
    let mut ts = TableState::default().with_selected(Some(state.selected));
    frame.render_stateful_widget(table, table_a, &mut ts);
    if channels.is_empty() {
        let msg = Paragraph::new(Line::styled("  no channel reported yet", theme.dim()));
        frame.render_widget(msg, Rect { y: table_a.y + 1, height: 1, ..table_a });
    }

    if let Some(c) = big {
        let w = note_a.width as usize;
        let lines = vec![
            Line::styled(
                super::fit(
                    &format!(
                        "! {}: {} members, so each join or leave sends {} frames.",
                        c.name,
                        units::count(c.members),
                        units::count(c.members)
                    ),
                    w,
                ),
                theme.warn(),
            ),
            Line::styled(
                super::fit("  A \"users online\" count needs only subscription_count, not presence.", w),
                theme.dim(),
            ),
        ];
        frame.render_widget(Paragraph::new(lines), note_a);
    }
}
