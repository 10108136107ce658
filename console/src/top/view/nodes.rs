//! The nodes view: one row per node, a totals row, and the cluster summary lines
//! (presence cost, auth load, pongs, Redis, drains in progress).
//!
//! Columns have priorities: the narrower the terminal, the more low-priority columns are
//! dropped; the connections bar takes whatever width is left.

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use crate::figures::{Health, NodeFigures, Thresholds, Totals};
use crate::status::{buffer_cell, state_cell};
use crate::top::state::State;
use crate::top::theme::Theme;
use crate::units;

/// The bar's scale runs to this multiple of the planning line, so the line's marker sits
/// at 80 % of the bar and "over the line" has room to show.
const BAR_SCALE: f64 = 1.25;
const BAR_MIN: u16 = 8;
const BAR_MAX: u16 = 30;
/// Width the bar keeps before priority-3+ columns are added.
const BAR_WANT: u16 = 16;

/// What a cell is drawn with.
struct Ctx<'a> {
    theme: &'a Theme,
    t: &'a Thresholds,
    bar: u16,
    /// Width of the VERSION column (it takes the width the bar does not).
    version: u16,
}

type NodeCell = fn(&NodeFigures, &Ctx<'_>) -> Line<'static>;
type TotalCell = fn(&Totals, &Ctx<'_>) -> Line<'static>;

/// One column: header, width, priority (0 always shown), alignment, cell renderers.
struct Col {
    title: &'static str,
    width: u16,
    prio: u8,
    right: bool,
    node: NodeCell,
    total: TotalCell,
}

const BAR: &str = "vs PLANNING LINE";

fn none(_: &Totals, _: &Ctx<'_>) -> Line<'static> {
    Line::default()
}

fn txt(s: String) -> Line<'static> {
    Line::from(s)
}

const COLS: &[Col] = &[
    Col {
        title: "NODE",
        width: 9,
        prio: 0,
        right: false,
        node: |n, _| txt(super::fit(&n.id, 9)),
        total: |_, _| txt("TOTAL".into()),
    },
    Col {
        title: "STATE",
        width: 11,
        prio: 0,
        right: false,
        node: |n, c| Line::styled(state_cell(n), c.theme.health(n.health)),
        total: |t, _| txt(format!("{}/{} up", t.nodes_up, t.nodes_total)),
    },
    Col {
        title: "CONNS",
        width: 7,
        prio: 0,
        right: true,
        node: |n, c| conns(n.connections, n.line_fraction, c),
        total: |t, c| conns(t.connections, t.line_fraction, c),
    },
    Col {
        title: BAR,
        width: BAR_MIN,
        prio: 0,
        right: false,
        node: |n, c| bar(n.line_fraction, c.bar, c.theme, c.t.near_fraction),
        total: |t, c| bar(t.line_fraction, c.bar, c.theme, c.t.near_fraction),
    },
    Col {
        title: "CPU%",
        width: 4,
        prio: 1,
        right: true,
        node: |n, _| live(n, || format!("{:.0}", n.cpu_percent)),
        total: |t, _| txt(if t.nodes_up > 0 { format!("{:.0}", t.cpu_percent) } else { "–".into() }),
    },
    Col {
        title: "PUBSUB",
        width: 10,
        prio: 1,
        right: true,
        node: buffer,
        total: |t, _| txt(t.max_buffer_bytes.map_or_else(|| "–".into(), units::bytes)),
    },
    Col { title: "LAG", width: 5, prio: 1, right: true, node: loop_lag, total: |t, c| lag_line(t.loop_lag_ms, c) },
    Col { title: "FAN99", width: 5, prio: 2, right: true, node: fanout_p99, total: none },
    Col {
        title: "OUT/S",
        width: 6,
        prio: 2,
        right: true,
        node: |n, _| txt(units::rate(n.frames_out_per_s)),
        total: |t, _| txt(units::rate(t.frames_out_per_s)),
    },
    Col {
        title: "+/S",
        width: 5,
        prio: 2,
        right: true,
        node: |n, _| txt(units::rate(n.connects_per_s)),
        total: |t, _| txt(units::rate(t.connects_per_s)),
    },
    Col {
        title: "-/S",
        width: 5,
        prio: 2,
        right: true,
        node: |n, _| txt(units::rate(n.disconnects_per_s)),
        total: |t, _| txt(units::rate(t.disconnects_per_s)),
    },
    Col {
        title: "PRES",
        width: 4,
        prio: 3,
        right: true,
        node: |n, _| txt(share(n.presence_share)),
        total: |t, _| txt(share(t.presence_share)),
    },
    Col {
        title: "AUTH/S",
        width: 6,
        prio: 3,
        right: true,
        node: |n, _| txt(units::rate(n.auth_requests_per_s)),
        total: |t, _| txt(units::rate(t.auth_requests_per_s)),
    },
    Col {
        title: "FAIL",
        width: 4,
        prio: 3,
        right: true,
        node: |n, c| fails(n.auth_failures_per_s, c),
        total: |t, c| fails(t.auth_failures_per_s, c),
    },
    Col {
        title: "PONG/S",
        width: 6,
        prio: 4,
        right: true,
        node: |n, _| txt(units::rate(n.pongs_per_s)),
        total: |t, _| txt(units::rate(t.pongs_per_s)),
    },
    Col {
        title: "BUS",
        width: 5,
        prio: 4,
        right: true,
        node: |n, _| live(n, || n.pubsub.as_ref().map_or_else(|| "–".into(), |p| units::millis(p.lag_ms))),
        total: none,
    },
    Col {
        title: "RSS",
        width: 5,
        prio: 5,
        right: true,
        node: |n, _| live(n, || units::bytes(n.rss_bytes)),
        total: |t, _| txt(units::bytes(t.rss_bytes)),
    },
    Col {
        title: "BC/S",
        width: 5,
        prio: 5,
        right: true,
        node: |n, _| txt(units::rate(n.broadcasts_per_s)),
        total: |t, _| txt(units::rate(t.broadcasts_per_s)),
    },
    Col {
        title: "UP",
        width: 6,
        prio: 6,
        right: true,
        node: |n, _| live(n, || units::duration(n.uptime_secs)),
        total: none,
    },
    Col {
        title: "VERSION",
        width: 8,
        prio: 7,
        right: false,
        node: |n, c| txt(super::fit(&n.version, c.version as usize)),
        total: none,
    },
];

/// A gauge shown only for live nodes: a stale node's last CPU or lag is not a reading.
fn live(n: &NodeFigures, f: impl FnOnce() -> String) -> Line<'static> {
    Line::from(if n.health.is_live() { f() } else { "–".to_string() })
}

fn share(s: Option<f64>) -> String {
    s.map_or_else(|| "–".into(), units::percent)
}

fn conns(n: u64, fraction: f64, c: &Ctx<'_>) -> Line<'static> {
    let num = if n < 100_000 { units::count(n) } else { units::short(n as f64) };
    // A glyph as well as a colour: `!` near the line, `▲` over it.
    let mark = if fraction > 1.0 {
        "▲"
    } else if fraction >= c.t.near_fraction {
        "!"
    } else {
        " "
    };
    Line::from(vec![
        Span::styled(num, c.theme.level(fraction, c.t.near_fraction)),
        Span::styled(mark, c.theme.level(fraction, c.t.near_fraction)),
    ])
}

/// A connections bar against the planning line: `█` below the line, `┃` the line itself,
/// `▓` past it, `·` empty. The marker sits at 80 % of the width.
pub(super) fn bar(fraction: f64, width: u16, theme: &Theme, near: f64) -> Line<'static> {
    let w = width as usize;
    if w < 3 {
        return Line::default();
    }
    let marker = ((w as f64) / BAR_SCALE).round() as usize;
    let marker = marker.clamp(1, w - 1);
    let filled = ((fraction / BAR_SCALE) * w as f64).round() as usize;
    let filled = filled.min(w);
    let fill_style = theme.level(fraction, near);
    let mut spans = Vec::with_capacity(4);
    let below: String = (0..marker).map(|i| if i < filled { '█' } else { '·' }).collect();
    let (full, empty): (String, String) = below.chars().partition(|&c| c == '█');
    spans.push(Span::styled(full, fill_style));
    spans.push(Span::styled(empty, theme.dim()));
    let marker_style = if fraction > 1.0 { theme.crit() } else { theme.marker() };
    spans.push(Span::styled("┃", marker_style));
    let mut over = filled.saturating_sub(marker + 1);
    if fraction > 1.0 {
        // Past the line always shows, however little.
        over = over.max(1).min(w - marker - 1);
    }
    spans.push(Span::styled("▓".repeat(over), theme.crit()));
    spans.push(Span::styled("·".repeat(w - marker - 1 - over), theme.dim()));
    Line::from(spans)
}

fn buffer(n: &NodeFigures, c: &Ctx<'_>) -> Line<'static> {
    let style = match &n.pubsub {
        None => c.theme.dim(),
        Some(p) if p.buffer_fraction.is_some_and(|f| f >= c.t.buffer_fraction) => c.theme.crit(),
        Some(p) if p.growing_secs > c.t.buffer_growing_secs => c.theme.warn(),
        Some(_) => c.theme.text(),
    };
    Line::styled(compact_buffer(n), style)
}

/// The buffer for a 10-column cell: bytes and the share of Redis's soft limit
/// (`9.0M 112%↑`), the bytes alone when the limit is unknown.
fn compact_buffer(n: &NodeFigures) -> String {
    match n.pubsub.as_ref().and_then(|p| Some((p.buffer_bytes?, p))) {
        Some((b, p)) => match p.buffer_fraction {
            Some(f) => format!("{} {}{}", units::bytes(b), units::percent(f), p.trend.arrow()),
            None => format!("{}{}", units::bytes(b), p.trend.arrow()),
        },
        None => buffer_cell(n),
    }
}

fn loop_lag(n: &NodeFigures, c: &Ctx<'_>) -> Line<'static> {
    if n.health.is_live() {
        lag_line(n.loop_lag_ms, c)
    } else {
        Line::from("–")
    }
}

/// Fan-out p99 against the node's own budget: `!` and the warning style over it.
fn fanout_p99(n: &NodeFigures, c: &Ctx<'_>) -> Line<'static> {
    match n.fanout.as_ref().filter(|_| n.health.is_live()) {
        Some(f) => {
            let v = f.p99_ms.map_or_else(|| "–".into(), units::millis);
            if f.over_budget {
                Line::styled(format!("{v}!"), c.theme.warn())
            } else {
                Line::styled(v, c.theme.text())
            }
        }
        None => Line::from("–"),
    }
}

fn lag_line(ms: f64, c: &Ctx<'_>) -> Line<'static> {
    let style = if ms >= c.t.loop_lag_ms { c.theme.warn() } else { c.theme.text() };
    Line::styled(units::millis(ms), style)
}

fn fails(r: Option<f64>, c: &Ctx<'_>) -> Line<'static> {
    let style = if r.is_some_and(|v| v > 0.0) { c.theme.crit() } else { c.theme.text() };
    Line::styled(units::rate(r), style)
}

/// Most VERSION grows to with spare width (a full `0.1.0 (26eb7d9b79)`).
const VERSION_MAX: u16 = 24;

/// Picks columns for `width`: all priority-0 ones, then by priority while they fit; the
/// bar grows into what is left, then VERSION.
fn choose(width: u16) -> (Vec<&'static Col>, u16) {
    // Widths plus one space between columns.
    let mut used: u16 = COLS.iter().filter(|c| c.prio == 0).map(|c| c.width + 1).sum::<u16>() - 1;
    let mut chosen: Vec<usize> = (0..COLS.len()).filter(|&i| COLS[i].prio == 0).collect();
    let mut rest: Vec<usize> = (0..COLS.len()).filter(|&i| COLS[i].prio > 0).collect();
    rest.sort_by_key(|&i| COLS[i].prio);
    for i in rest {
        // Low-priority columns only while the bar keeps a readable width.
        let reserve = if COLS[i].prio >= 3 { BAR_WANT - BAR_MIN } else { 0 };
        if used + COLS[i].width + reserve < width {
            used += COLS[i].width + 1;
            chosen.push(i);
        }
    }
    chosen.sort_unstable();
    let bar = (BAR_MIN + width.saturating_sub(used)).min(BAR_MAX);
    (chosen.into_iter().map(|i| &COLS[i]).collect(), bar)
}

fn cell(line: Line<'static>, right: bool) -> Cell<'static> {
    Cell::from(if right { line.alignment(Alignment::Right) } else { line })
}

pub(super) fn draw(frame: &mut Frame<'_>, area: Rect, state: &State, theme: &Theme) {
    let Some(d) = state.shown() else { return };
    let thresholds = state.tracker.thresholds();
    let (cols, bar_w) = choose(area.width);
    let used: u16 = cols.iter().map(|c| if c.title == BAR { bar_w } else { c.width } + 1).sum::<u16>();
    let version_w = 8 + area.width.saturating_sub(used).min(VERSION_MAX - 8);
    let hidden = COLS.len() - cols.len();
    let ctx = Ctx { theme, t: thresholds, bar: bar_w, version: version_w };
    let widths: Vec<Constraint> = cols
        .iter()
        .map(|c| {
            Constraint::Length(match c.title {
                BAR => bar_w,
                "VERSION" => version_w,
                _ => c.width,
            })
        })
        .collect();
    let nodes = state.visible_nodes();
    let summary = summary_lines(state, theme, area.width as usize);
    let rows_h = (nodes.len() as u16 + 1).max(2);
    let avail = area.height.saturating_sub(2);
    let table_h = rows_h.min(avail.saturating_sub(summary.len().min(2) as u16)).max(2);
    let [title_a, table_a, totals_a, summary_a] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(table_h),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(area);

    frame.render_widget(title(state, nodes.len(), hidden, theme), title_a);
    let stale_data = state.data_is_stale();
    let header = Row::new(cols.iter().map(|c| {
        let text = if c.title == BAR { bar_title(&nodes, bar_w) } else { c.title.to_string() };
        cell(Line::from(text), c.right)
    }))
    .style(theme.title());
    let rows = nodes.iter().map(|n| {
        let style = if !n.health.is_live() || stale_data { theme.dim() } else { Style::new() };
        Row::new(cols.iter().map(|c| cell((c.node)(n, &ctx), c.right))).style(style)
    });
    let table = Table::new(rows, widths.clone()).header(header).column_spacing(1).row_highlight_style(theme.selected());
    let mut ts = TableState::default().with_selected(Some(state.selected));
    frame.render_stateful_widget(table, table_a, &mut ts);

    let totals = Row::new(cols.iter().map(|c| cell((c.total)(&d.figures.totals, &ctx), c.right))).style(theme.title());
    frame.render_widget(Table::new([totals], widths).column_spacing(1), totals_a);
    let used = summary.len() as u16;
    frame.render_widget(Paragraph::new(summary), summary_a);
    // Spare rows on tall terminals: the top channels (Tab shows them all).
    if summary_a.height > used + 3 {
        let rows = (summary_a.height - used - 1) as usize;
        let lines = top_channels(state, theme, rows, area.width as usize);
        let rect = Rect { y: summary_a.y + used + 1, height: summary_a.height - used - 1, ..summary_a };
        frame.render_widget(Paragraph::new(lines), rect);
    }
}

fn top_channels(state: &State, theme: &Theme, rows: usize, width: usize) -> Vec<Line<'static>> {
    let channels = state.visible_channels();
    if channels.is_empty() || rows < 2 {
        return Vec::new();
    }
    let mut out = vec![Line::styled("top channels by frames out/s (Tab: all)", theme.title())];
    let name_w = width.saturating_sub(50).clamp(12, 40);
    for c in channels.iter().take(rows - 1) {
        let members = if c.members > 0 { format!("{} members", units::count(c.members)) } else { String::new() };
        let line = format!(
            "{:<name_w$} {:<9} {:>7} subs {:>15} {:>7}/s",
            super::fit(&c.name, name_w),
            c.kind,
            units::count(c.subscribers),
            members,
            units::rate(c.frames_out_per_s),
        );
        let style = if c.kind == "presence" && c.members >= 1_000 { theme.warn() } else { theme.text() };
        out.push(Line::styled(super::fit(&line, width), style));
    }
    out
}

fn bar_title(nodes: &[&NodeFigures], width: u16) -> String {
    let lines: Vec<u64> = nodes.iter().map(|n| n.planning_line).collect();
    let same = lines.windows(2).all(|w| w[0] == w[1]);
    let line = match lines.first() {
        Some(&l) if same && l % 1000 == 0 => format!("{}k", l / 1000),
        Some(&l) if same => units::count(l),
        _ => String::new(),
    };
    [format!("vs {line} line"), format!("vs {line}"), "vs line".to_string()]
        .into_iter()
        .find(|t| t.chars().count() <= width as usize)
        .unwrap_or_default()
}

fn title(state: &State, n: usize, hidden: usize, theme: &Theme) -> Paragraph<'static> {
    let mut spans = vec![Span::styled(format!("nodes ({n})"), theme.title())];
    if hidden > 0 {
        // Columns dropped for width: say so first (a wider terminal or ⏎ detail shows them).
        spans.push(Span::styled(format!(" · +{hidden} cols hidden"), theme.warn()));
    }
    spans.push(Span::raw(format!(" · sort {}", state.sort.label())));
    if !state.filter.is_empty() {
        spans.push(Span::styled(format!(" · filter '{}'", state.filter), theme.warn()));
    }
    spans.push(Span::styled(" · Tab: channels · redis · timeline", theme.dim()));
    Paragraph::new(Line::from(spans)).block(Block::default().borders(Borders::NONE))
}

/// The lines under the table: what the whole cluster spends and on what.
fn summary_lines(state: &State, theme: &Theme, width: usize) -> Vec<Line<'static>> {
    let Some(d) = state.shown() else { return Vec::new() };
    let f = &d.figures;
    let t = &f.totals;
    let mut out = Vec::new();
    out.push(Line::default());
    out.push(Line::from(vec![
        Span::styled("presence ", theme.title()),
        Span::raw(format!(
            "{} ch · {} members · {} fr/s = {} of out",
            units::count(t.presence_channels),
            units::count(t.presence_members),
            units::rate(t.presence_frames_per_s),
            share(t.presence_share)
        )),
    ]));
    let fails = t.auth_failures_per_s.unwrap_or(0.0);
    out.push(Line::from(vec![
        Span::styled("auth ", theme.title()),
        Span::raw(format!("{}/s", units::rate(t.auth_requests_per_s))),
        Span::styled(
            format!(" · {} fail/s", units::rate(t.auth_failures_per_s)),
            if fails > 0.0 { theme.crit() } else { theme.text() },
        ),
        Span::styled("  pongs ", theme.title()),
        Span::raw(format!("{}/s", units::rate(t.pongs_per_s))),
        Span::styled("  out ", theme.title()),
        Span::raw(format!("{} fr/s · {} bc/s", units::rate(t.frames_out_per_s), units::rate(t.broadcasts_per_s))),
    ]));
    let refused = [
        t.limit_hits_per_s,
        t.slow_consumers_per_s,
        t.upgrades_refused_per_s,
        t.publish_dropped_per_s,
        t.webhook_dropped_per_s,
    ];
    let any = refused.iter().any(|r| r.is_some_and(|v| v > 0.0));
    out.push(Line::from(vec![
        Span::styled("refused/s ", theme.title()),
        Span::styled(
            format!(
                "limit {} · slow {} · upgrades {} · bus drops {} · hook drops {}",
                units::rate(refused[0]),
                units::rate(refused[1]),
                units::rate(refused[2]),
                units::rate(refused[3]),
                units::rate(refused[4])
            ),
            if any { theme.warn() } else { theme.text() },
        ),
    ]));
    if let Some(r) = &f.redis {
        out.push(super::redis::summary_line(r, theme, width));
    }
    for n in &f.nodes {
        if let (Some(dr), Health::Draining) = (&n.drain, n.health) {
            out.push(Line::styled(
                super::fit(
                    &format!(
                        "◐ {} drain {}: {} of {} left · {}/{} · deadline {} · {} hints{}",
                        n.id,
                        units::percent(dr.progress),
                        units::count(dr.sockets_left),
                        units::count(dr.sockets_at_start),
                        units::duration(dr.elapsed_secs as u64),
                        units::duration(dr.window_secs as u64),
                        units::duration(dr.deadline_secs as u64),
                        units::count(dr.hints_sent),
                        if dr.forced > 0 { format!(" · {} FORCED", units::count(dr.forced)) } else { String::new() }
                    ),
                    width,
                ),
                theme.warn(),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(l: &Line<'_>) -> String {
        l.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn bar_marks_the_line_and_the_overflow() {
        let t = Theme::MONO;
        assert_eq!(text(&bar(0.0, 10, &t, 0.9)), "········┃·");
        assert_eq!(text(&bar(0.5, 10, &t, 0.9)), "████····┃·");
        assert_eq!(text(&bar(1.0, 10, &t, 0.9)), "████████┃·");
        assert_eq!(text(&bar(1.25, 10, &t, 0.9)), "████████┃▓");
    }

    #[test]
    fn columns_fit_the_width() {
        for w in [60u16, 80, 100, 120, 200] {
            let (cols, bar) = choose(w);
            let used: u16 = cols.iter().map(|c| if c.title == BAR { bar } else { c.width } + 1).sum::<u16>() - 1;
            assert!(used <= w, "{w}: {used}");
            assert!(cols.iter().any(|c| c.title == "NODE"));
        }
        let (narrow, _) = choose(60);
        let (wide, _) = choose(120);
        assert!(narrow.len() < wide.len());
    }
}
