//! Header (link state), alerts strip and key-hint footer.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::status::link_summary;
use crate::top::keys::{self, Context};
use crate::top::state::{Overlay, State};
use crate::top::theme::Theme;

/// Rows the alerts strip takes: every alert when the body still fits (nodes, totals and
/// the summary lines), else at least three with a "more" line.
pub(super) fn alerts_height(state: &State, height: u16) -> u16 {
    let Some(d) = state.shown() else { return 0 };
    let f = &d.figures;
    let draining = f.nodes.iter().filter(|n| n.drain.is_some()).count();
    let body_need = (f.nodes.len() + 3 + 5 + draining) as u16;
    let spare = height.saturating_sub(2 + body_need).max(3);
    (f.alerts.len() as u16).clamp(1, spare.min(10))
}

pub(super) fn header(frame: &mut Frame<'_>, area: Rect, state: &State, theme: &Theme) {
    let mut tags: Vec<Span<'static>> = Vec::new();
    if state.data_is_stale() {
        tags.push(Span::styled(" STALE", theme.crit()));
    }
    if state.frozen.is_some() {
        tags.push(Span::styled(" ❚❚ FROZEN", theme.warn()));
    }
    tags.push(if state.write { Span::styled(" WRITE", theme.warn()) } else { Span::styled(" read-only", theme.dim()) });
    // (priority, part): when space is short, the highest numbers go first.
    let mut parts: Vec<(u8, Span<'static>)> =
        vec![(0, Span::styled("rtc top", theme.title())), (2, Span::raw(format!(" · {}", state.source_label)))];
    match state.shown() {
        None => parts.push((1, Span::styled(" · connecting…", theme.dim()))),
        Some(d) => {
            let f = &d.figures;
            let degraded =
                f.totals.nodes_up < f.totals.nodes_total || f.redis.as_ref().is_some_and(|r| r.error.is_some());
            let style = if degraded { theme.warn() } else { theme.text() };
            parts.push((1, Span::styled(format!(" · {}", link_summary(f)), style)));
            let age = state.data_age_secs().unwrap_or(0.0);
            let age_style = if state.data_is_stale() { theme.crit() } else { theme.text() };
            parts.push((1, Span::styled(format!(" · data {age:.1} s old"), age_style)));
            parts.push((3, Span::styled(format!(" · every {}", interval(state)), theme.dim())));
        }
    }
    let width = area.width as usize;
    let tags_w: usize = tags.iter().map(Span::width).sum();
    while parts.iter().map(|(_, s)| s.width()).sum::<usize>() + tags_w > width {
        let Some(worst) =
            parts.iter().enumerate().filter(|(_, p)| p.0 > 0).max_by_key(|(i, p)| (p.0, *i)).map(|(i, _)| i)
        else {
            break;
        };
        parts.remove(worst);
    }
    let mut parts: Vec<Span<'static>> = parts.into_iter().map(|(_, s)| s).collect();
    let used: usize = parts.iter().map(Span::width).sum::<usize>() + tags_w;
    parts.push(Span::raw(" ".repeat(width.saturating_sub(used))));
    parts.extend(tags);
    frame.render_widget(Paragraph::new(Line::from(parts)), area);
}

fn interval(state: &State) -> String {
    let ms = state.interval.as_millis() as u64;
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

pub(super) fn alerts(frame: &mut Frame<'_>, area: Rect, state: &State, theme: &Theme) {
    let Some(d) = state.shown() else { return };
    let list = &d.figures.alerts;
    let width = area.width as usize;
    let lines: Vec<Line<'_>> = if list.is_empty() {
        vec![Line::from(Span::styled("✓ no alerts", theme.ok()))]
    } else {
        let rows = area.height as usize;
        let shown = if list.len() > rows { rows.saturating_sub(1) } else { rows };
        let mut v: Vec<Line<'_>> = list
            .iter()
            .take(shown)
            .map(|a| {
                let text = super::fit(&format!("{} {}", a.severity.glyph(), a.message), width);
                Line::from(Span::styled(text, theme.severity(a.severity)))
            })
            .collect();
        if list.len() > shown {
            v.push(Line::from(Span::styled(
                format!("  … {} more alerts (rtc status lists all)", list.len() - shown),
                theme.dim(),
            )));
        }
        v
    };
    frame.render_widget(Paragraph::new(lines), area);
}

pub(super) fn footer(frame: &mut Frame<'_>, area: Rect, state: &State, theme: &Theme) {
    let width = area.width as usize;
    if state.editing_filter {
        let line = Line::from(vec![
            Span::styled("/", theme.key()),
            Span::raw(state.filter.clone()),
            Span::styled("▏", theme.key()),
            Span::styled("  ⏎ keep  Esc clear", theme.dim()),
        ]);
        frame.render_widget(Paragraph::new(line), area);
        return;
    }
    if let Some(m) = &state.message {
        let style = if m.error { theme.crit() } else { theme.ok() };
        let text = super::fit(&m.text, width);
        frame.render_widget(Paragraph::new(Line::from(Span::styled(text, style))), area);
        return;
    }
    let context = match state.overlay {
        Some(Overlay::ConfirmDrain(_)) => Context::Confirm,
        _ => Context::Main,
    };
    let mut spans = Vec::new();
    let mut used = 0usize;
    let mut hints: Vec<(&str, &str)> = keys::hints(context, state.write);
    if context == Context::Main && (state.detail.is_some() || state.overlay.is_some() || !state.filter.is_empty()) {
        hints.insert(1, ("Esc", "back"));
    }
    for (k, label) in hints {
        let w = k.chars().count() + 1 + label.chars().count() + 2;
        if used + w > width {
            break;
        }
        spans.push(Span::styled(k.to_string(), theme.key()));
        spans.push(Span::raw(format!(" {label}  ")));
        used += w;
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
