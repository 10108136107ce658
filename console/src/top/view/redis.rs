//! The Redis view: Redis's own figures (memory, pub/sub clients, output-buffer limit),
//! whether it is shared with other work, and each node's subscriber buffer. On a Redis
//! Cluster or NATS, Redis's figures are shown as not available with that engine and the
//! table keeps the nodes' own bus figures (lag, backlog).

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use crate::figures::Trend;
use crate::snapshot::RedisSample;
use crate::top::state::State;
use crate::top::theme::Theme;
use crate::units;

/// The one-line Redis summary under the nodes table.
pub(super) fn summary_line(r: &RedisSample, theme: &Theme, width: usize) -> Line<'static> {
    let engine = r.engine.as_str();
    if let Some(e) = &r.error {
        return Line::styled(super::fit(&format!("{engine} ✖ unreachable: {e}"), width), theme.crit());
    }
    if !r.has("redis_figures") {
        return Line::from(vec![
            Span::styled(format!("{engine} "), theme.title()),
            Span::styled("✓ registry read", theme.ok()),
            Span::styled(
                super::fit(&format!(" · Redis figures and pub/sub buffers {}", r.not_available_text()), width),
                theme.dim(),
            ),
        ]);
    }
    let limit = r.pubsub_limit.and_then(|l| l.effective()).map_or_else(|| "?".into(), units::bytes);
    let mut spans = vec![Span::styled("redis ", theme.title()), Span::raw(format!("v{} ", r.version))];
    if r.keyspace.foreign > 0 {
        spans.push(Span::styled("! shared", theme.warn()));
    } else {
        spans.push(Span::styled("✓ dedicated", theme.ok()));
    }
    spans.push(Span::raw(format!(
        " · {} used · {} pub/sub clients · limit {}",
        units::bytes(r.used_memory),
        r.pubsub_clients,
        limit
    )));
    Line::from(spans)
}

pub(super) fn draw(frame: &mut Frame<'_>, area: Rect, state: &State, theme: &Theme) {
    let Some(d) = state.shown() else { return };
    let title = Line::from(vec![
        Span::styled("nodes · channels · ", theme.dim()),
        Span::styled("redis", theme.title()),
        Span::styled(" · timeline", theme.dim()),
    ]);
    let Some(r) = &d.figures.redis else {
        let lines = vec![
            title,
            Line::default(),
            Line::styled("  no Redis in this source (--node mode).", theme.dim()),
            Line::styled("  Pub/sub buffers and the registry need --cluster NAME or --bus URL.", theme.dim()),
        ];
        frame.render_widget(Paragraph::new(lines), area);
        return;
    };
    let w = area.width as usize;
    let mut lines = vec![title, Line::default()];
    if let Some(e) = &r.error {
        lines.push(Line::styled(super::fit(&format!("  ✖ {} unreachable: {e}", r.engine.as_str()), w), theme.crit()));
        frame.render_widget(Paragraph::new(lines), area);
        return;
    }
    if r.has("redis_figures") {
        redis_figures(r, theme, w, &mut lines);
    } else {
        let text = format!("  Redis's own figures are {}.", r.not_available_text());
        lines.push(Line::styled(super::fit(&text, w), theme.dim()));
        lines.push(Line::styled(
            super::fit("  (memory, pub/sub clients, buffer limit, CLIENT LIST buffers, key sample)", w),
            theme.dim(),
        ));
        lines.push(Line::styled(super::fit("  The nodes' own bus figures:", w), theme.dim()));
    }
    lines.push(Line::default());
    let top_h = lines.len() as u16;
    draw_table(frame, area, top_h, lines, state, theme, r);
}

/// Redis's own figures and whether it is shared (one Redis only).
fn redis_figures(r: &RedisSample, theme: &Theme, w: usize, lines: &mut Vec<Line<'static>>) {
    let kv = |k: &str, v: String| Line::from(vec![Span::styled(format!("  {k:<20}"), theme.title()), Span::raw(v)]);
    lines.push(kv("version", r.version.clone()));
    lines.push(kv("used memory", units::bytes(r.used_memory)));
    lines.push(kv("pub/sub clients", r.pubsub_clients.to_string()));
    lines.push(kv(
        "pub/sub limit",
        match r.pubsub_limit {
            Some(l) => format!(
                "hard {} · soft {} for {}s",
                units::bytes(l.hard_bytes),
                units::bytes(l.soft_bytes),
                l.soft_secs
            ),
            None => "unknown (CONFIG GET not allowed)".into(),
        },
    ));
    let ks = &r.keyspace;
    let scope = if ks.complete { "all" } else { "a sample of" };
    let indent = " ".repeat(22);
    if ks.foreign > 0 {
        lines.push(Line::from(vec![
            Span::styled(format!("  {:<20}", "shared"), theme.title()),
            Span::styled(format!("! yes: {} of {scope} {} keys are not rtc's", ks.foreign, ks.scanned), theme.warn()),
        ]));
        lines.push(Line::raw(super::fit(&format!("{indent}e.g. {}", ks.examples.join(", ")), w)));
        lines.push(Line::styled(
            super::fit(&format!("{indent}a cache or queue here competes with pub/sub"), w),
            theme.dim(),
        ));
    } else {
        lines.push(kv("shared", format!("✓ no: {scope} {} keys are rtc's", ks.scanned)));
    }
}

/// The per-node bus table under the figures.
fn draw_table(
    frame: &mut Frame<'_>,
    area: Rect,
    top_h: u16,
    lines: Vec<Line<'static>>,
    state: &State,
    theme: &Theme,
    r: &RedisSample,
) {
    let [top_a, table_a] = Layout::vertical([Constraint::Length(top_h), Constraint::Min(2)]).areas(area);
    frame.render_widget(Paragraph::new(lines), top_a);

    let right = |s: String| Cell::from(Line::from(s).alignment(Alignment::Right));
    let header = Row::new([
        Cell::from("NODE"),
        right("BUFFER".into()),
        right("OF SOFT".into()),
        Cell::from("TREND"),
        right("GROWING".into()),
        right("BUS LAG".into()),
        right("BACKLOG".into()),
        right("CUT IN".into()),
    ])
    .style(theme.title());
    let t = state.tracker.thresholds();
    let rows = state.visible_nodes().into_iter().map(|n| {
        let Some(p) = &n.pubsub else {
            return Row::new([Cell::from(n.id.clone()), Cell::from("  –")]).style(theme.dim());
        };
        let trend = match p.trend {
            Trend::Rising => "↑ rising",
            Trend::Falling => "↓ falling",
            Trend::Steady => "  steady",
        };
        let style = if p.buffer_fraction.is_some_and(|f| f >= t.buffer_fraction) {
            theme.crit()
        } else if p.growing_secs > t.buffer_growing_secs {
            theme.warn()
        } else if n.health.is_live() {
            theme.text()
        } else {
            theme.dim()
        };
        Row::new([
            Cell::from(super::fit(&n.id, 12)),
            right(match p.buffer_bytes {
                Some(b) => units::bytes(b),
                None if p.buffer_known => "?".into(),
                None => "n/a".into(),
            }),
            right(p.buffer_fraction.map_or_else(|| "–".into(), units::percent)),
            Cell::from(trend),
            right(if p.growing_secs > 0.0 { units::duration(p.growing_secs as u64) } else { "–".into() }),
            right(if n.health.is_live() { units::millis(p.lag_ms) } else { "–".into() }),
            right(units::count(p.backlog)),
            right(p.secs_to_cut.map_or_else(|| "–".into(), |s| units::duration(s.ceil() as u64))),
        ])
        .style(style)
    });
    // Subscribers that belong to no registered node: a leftover or another version.
    let others = r.other_subscribers.iter().map(|sub| {
        let name = if sub.name.is_empty() { format!("? {}", sub.addr) } else { format!("? {}", sub.name) };
        Row::new([Cell::from(super::fit(&name, 12)), right(units::bytes(sub.omem)), right("unknown".into())])
            .style(theme.warn())
    });
    let rows = rows.chain(others);
    let widths = [12, 8, 8, 9, 7, 7, 8, 6].map(Constraint::Length);
    let table = Table::new(rows, widths).header(header).column_spacing(1).row_highlight_style(theme.selected());
    let mut ts = TableState::default().with_selected(Some(state.selected));
    frame.render_stateful_widget(table, table_a, &mut ts);
}
