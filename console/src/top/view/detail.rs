//! A node's detail (`Enter`): every figure, and sparklines of the last few minutes.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline};
use ratatui::Frame;

use crate::figures::NodeFigures;
use crate::status::{buffer_cell, state_cell};
use crate::top::state::{NodeHistory, Series, State};
use crate::top::theme::Theme;
use crate::units;

/// Samples shown in sparklines: five minutes at the default interval.
const WINDOW: usize = 300;

pub(super) fn draw(frame: &mut Frame<'_>, area: Rect, state: &State, theme: &Theme) {
    let Some(id) = state.detail.as_deref() else { return };
    let Some(n) = state.detail_node() else {
        let msg = format!("{id} is no longer in the cluster · Esc back");
        frame.render_widget(Paragraph::new(Line::styled(msg, theme.dim())), area);
        return;
    };
    let [title_a, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    let mut title =
        vec![Span::styled(format!("{} ", n.id), theme.title()), Span::styled(state_cell(n), theme.health(n.health))];
    if !n.version.is_empty() {
        title.push(Span::raw(format!(" · v{} · up {}", n.version, units::duration(n.uptime_secs))));
    }
    if let Some(url) = &n.url {
        title.push(Span::styled(format!(" · {url}"), theme.dim()));
    }
    if !n.health.is_live() {
        title.push(Span::styled(format!(" · last seen {:.0} s ago", n.age_secs), theme.crit()));
    }
    frame.render_widget(Paragraph::new(Line::from(title)), title_a);

    let left_w = (body.width / 2).clamp(40, 52);
    let [facts_a, spark_a] = Layout::horizontal([Constraint::Length(left_w), Constraint::Min(10)]).areas(body);
    let t = state.tracker.thresholds();
    let mut lines = facts(n, theme, t.near_fraction);
    lines.truncate(facts_a.height as usize);
    let style = if n.health.is_live() { theme.text() } else { theme.dim() };
    frame.render_widget(Paragraph::new(lines).style(style), facts_a);

    let empty = NodeHistory::default();
    let history = state.shown().and_then(|d| d.history.get(&n.id)).unwrap_or(&empty);
    sparklines(frame, spark_a, n, history, state.interval, theme);
}

fn row(label: &str, value: String) -> Line<'static> {
    Line::from(vec![Span::raw(format!("{label:<12}")), Span::raw(value)])
}

fn facts(n: &NodeFigures, theme: &Theme, near: f64) -> Vec<Line<'static>> {
    let mut v = vec![
        Line::from(vec![
            Span::raw(format!("{:<12}", "connections")),
            Span::styled(
                format!(
                    "{} / {} ({})",
                    units::count(n.connections),
                    units::count(n.planning_line),
                    units::percent(n.line_fraction)
                ),
                theme.level(n.line_fraction, near),
            ),
        ]),
        {
            let mut l = super::nodes::bar(n.line_fraction, 22, theme, near);
            l.spans.insert(0, Span::raw(" ".repeat(12)));
            l
        },
        row("conn/s", format!("+{} −{}", units::rate(n.connects_per_s), units::rate(n.disconnects_per_s))),
        row("cpu · rss", format!("{:.0}% · {}", n.cpu_percent, units::bytes(n.rss_bytes))),
        row(
            "frames out",
            format!("{}/s · bcast {}/s", units::rate(n.frames_out_per_s), units::rate(n.broadcasts_per_s)),
        ),
        row(
            "presence",
            format!("{} ch · {} members", units::count(n.presence_channels), units::count(n.presence_members)),
        ),
        row(
            "",
            format!(
                "{} fr/s = {} of out",
                units::rate(n.presence_frames_per_s),
                n.presence_share.map_or_else(|| "–".into(), units::percent)
            ),
        ),
        row(
            "auth",
            format!("{}/s · {} fail/s", units::rate(n.auth_requests_per_s), units::rate(n.auth_failures_per_s)),
        ),
        row("pongs", format!("{}/s", units::rate(n.pongs_per_s))),
        row("loop lag", units::millis(n.loop_lag_ms)),
        row(
            "refused/s",
            format!(
                "limit {} · slow {} · upgr {}",
                units::rate(n.limit_hits_per_s),
                units::rate(n.slow_consumers_per_s),
                units::rate(n.upgrades_refused_per_s)
            ),
        ),
        row(
            "dropped/s",
            format!("bus {} · hooks {}", units::rate(n.publish_dropped_per_s), units::rate(n.webhook_dropped_per_s)),
        ),
    ];
    match &n.pubsub {
        Some(p) => {
            let growing = if p.growing_secs > 0.0 {
                format!(" growing {}", units::duration(p.growing_secs as u64))
            } else {
                String::new()
            };
            v.push(row("pub/sub buf", format!("{}{growing}", buffer_cell(n).trim_end())));
            v.push(row(
                "bus",
                format!(
                    "lag {} (max {}) · q {} · {} reconn",
                    units::millis(p.lag_ms),
                    units::millis(p.lag_max_ms),
                    units::count(p.backlog),
                    p.reconnects
                ),
            ));
        }
        None => v.push(row("pub/sub", "standalone (no cluster bus)".into())),
    }
    v.push(row("channels", format!("{} · {} subs", units::count(n.channels), units::count(n.subscriptions))));
    if n.open_files_limit > 0 {
        v.push(row("open files", format!("limit {}", units::count(n.open_files_limit))));
    }
    if let Some(d) = &n.drain {
        v.push(Line::styled(
            format!(
                "{:<12}{}/{} left ({} done)",
                "drain",
                units::count(d.sockets_left),
                units::count(d.sockets_at_start),
                units::percent(d.progress)
            ),
            theme.warn(),
        ));
        v.push(row(
            "",
            format!(
                "{}/{} · deadline {}",
                units::duration(d.elapsed_secs as u64),
                units::duration(d.window_secs as u64),
                units::duration(d.deadline_secs as u64)
            ),
        ));
        if d.forced > 0 {
            v.push(Line::styled(format!("{:<12}{} forced at deadline", "", units::count(d.forced)), theme.crit()));
        }
    }
    if let Some(p) = &n.problem {
        v.push(Line::styled(format!("{:<12}{p}", "problem"), theme.crit()));
    }
    // Last, so a short screen cuts it before the drain progress.
    fanout_row(n, theme, &mut v);
    v
}

/// Fan-out p99 against the node's budget, and the measured line (the planning line is
/// on the connections row above).
fn fanout_row(n: &NodeFigures, theme: &Theme, v: &mut Vec<Line<'static>>) {
    let Some(f) = &n.fanout else { return };
    let p99 = f.p99_ms.map_or_else(|| "–".into(), units::millis);
    let line = f.measured_line.map_or_else(|| "–".into(), |l| units::short(l as f64));
    let text = format!("p99 {p99}/{} · line {line}", units::millis(f.budget_ms));
    let style = if f.over_budget { theme.warn() } else { theme.text() };
    v.push(Line::from(vec![Span::raw(format!("{:<12}", "fan-out")), Span::styled(text, style)]));
}

fn sparklines(
    frame: &mut Frame<'_>,
    area: Rect,
    n: &NodeFigures,
    h: &NodeHistory,
    interval: std::time::Duration,
    theme: &Theme,
) {
    let width = area.width.saturating_sub(1) as usize;
    let fan = n.fanout.as_ref().and_then(|f| f.p99_ms).map_or_else(|| "–".into(), |ms| format!("{:.0}", ms * 1000.0));
    let charts: [(&str, &Series, String, Option<u64>); 6] = [
        ("connections", &h.connections, units::count(n.connections), Some(n.planning_line)),
        // Absolute: 0–100 % of one core, so 1–2 % does not draw full height.
        ("cpu %", &h.cpu, format!("{:.0}", n.cpu_percent), Some(100)),
        ("frames out/s", &h.frames_out, units::rate(n.frames_out_per_s), None),
        (
            "pub/sub buffer",
            &h.buffer,
            n.pubsub
                .as_ref()
                .map_or_else(|| "–".into(), |p| p.buffer_bytes.map_or_else(|| units::count(p.backlog), units::bytes)),
            None,
        ),
        ("loop lag", &h.loop_lag, units::millis(n.loop_lag_ms), None),
        ("fan-out p99 µs", &h.fanout_p99, fan, None),
    ];
    let each = (area.height / charts.len() as u16).max(2);
    let span = units::duration((h.connections.len().min(WINDOW) as f64 * interval.as_secs_f64()) as u64);
    for (i, (label, series, now, floor)) in charts.into_iter().enumerate() {
        let y = area.y + i as u16 * each;
        if y + 2 > area.y + area.height {
            break;
        }
        let data = series.last(WINDOW, width);
        let peak = data.iter().copied().max().unwrap_or(0);
        let head = format!(" {label} {now} (peak {}, last {span})", units::short(peak as f64));
        let head_a = Rect { y, height: 1, ..area };
        frame
            .render_widget(Paragraph::new(Line::styled(super::fit(&head, area.width as usize), theme.title())), head_a);
        let spark_a = Rect { x: area.x + 1, y: y + 1, width: area.width.saturating_sub(1), height: each - 1 };
        let max = floor.map_or(peak, |f| f.max(peak)).max(1);
        let spark = Sparkline::default().data(&data).max(max).style(theme.ok());
        frame.render_widget(spark, spark_a);
    }
}
