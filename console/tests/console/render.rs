//! Rendering snapshots on ratatui's `TestBackend` at 80×24 and 120×40 (gitui style):
//! the text of every frame is committed under `snapshots/`.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use ratatui::Terminal;
use rtc_console::figures::Thresholds;
use rtc_console::top::state::State;
use rtc_console::top::theme::Theme;
use rtc_console::top::update::{update, Event};
use rtc_console::top::view;

use crate::fixtures::{self, T0};
use crate::update::loaded;

fn draw(state: &State, theme: Theme, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| view::draw(f, state, &theme)).unwrap();
    term
}

fn press(state: &mut State, code: KeyCode) {
    update(state, Event::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

/// The frame as plain text, one line per row.
pub fn text(term: &Terminal<TestBackend>) -> String {
    let buf = term.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[test]
fn nodes_80x24() {
    let term = draw(&loaded(false), Theme::MONO, 80, 24);
    insta::assert_snapshot!("nodes_80x24", term.backend());
    let t = text(&term);
    // The planning-line marker, the over-the-line glyphs, the stale and draining rows.
    assert!(t.contains('┃'), "{t}");
    assert!(t.contains("12,480▲"), "{t}");
    assert!(t.contains("✖ down"), "{t}");
    assert!(t.contains("◐ drain 42%"), "{t}");
    assert!(t.contains("node-3: pub/sub buffer growing for 14s"), "{t}");
}

#[test]
fn nodes_120x40() {
    let term = draw(&loaded(false), Theme::MONO, 120, 40);
    insta::assert_snapshot!("nodes_120x40", term.backend());
    // Fan-out p99 per node; `!` over the node's budget, `–` for a stale node.
    let t = text(&term);
    assert!(t.contains("FAN99"), "{t}");
    assert!(t.contains("64ms 80ms!"), "{t}");
    assert!(t.contains("node-2: fan-out p99 80ms over the 50ms budget; measured line 8,900 sockets"), "{t}");
}

#[test]
fn narrow_terminal_drops_columns() {
    let term = draw(&loaded(false), Theme::MONO, 64, 20);
    insta::assert_snapshot!("nodes_64x20", term.backend());
    let t = text(&term);
    assert!(!t.contains("OUT/S"), "{t}");
    assert!(t.contains("+13 cols hidden"), "a marker says columns were dropped: {t}");
    assert!(t.contains("PUBSUB"), "{t}");
}

#[test]
fn too_small_screen() {
    let term = draw(&loaded(false), Theme::MONO, 50, 12);
    insta::assert_snapshot!("too_small_50x12", term.backend());
    assert!(text(&term).contains("have 50×12, need 60×15"));
}

#[test]
fn channels_80x24() {
    let mut s = loaded(false);
    press(&mut s, KeyCode::Tab);
    insta::assert_snapshot!("channels_80x24", draw(&s, Theme::MONO, 80, 24).backend());
}

#[test]
fn redis_view_shared_80x24() {
    let mut s = State::new("cluster prod".into(), Duration::from_secs(1), false, Thresholds::default());
    for snap in fixtures::cluster(true) {
        update(&mut s, Event::Snapshot(Box::new(snap)));
    }
    update(&mut s, Event::Tick(T0 + 14_800));
    press(&mut s, KeyCode::Tab);
    press(&mut s, KeyCode::Tab);
    insta::assert_snapshot!("redis_shared_80x24", draw(&s, Theme::MONO, 80, 24).backend());
}

#[test]
fn node_detail_120x40() {
    let mut s = loaded(false);
    press(&mut s, KeyCode::Down);
    press(&mut s, KeyCode::Down);
    press(&mut s, KeyCode::Enter);
    let term = draw(&s, Theme::MONO, 120, 40);
    insta::assert_snapshot!("detail_node3_120x40", term.backend());
    let t = text(&term);
    assert!(t.contains("fan-out     p99 3ms/50ms · line 18.5k"), "{t}");
    assert!(t.contains("fan-out p99 µs 3200"), "{t}");
}

#[test]
fn node_detail_80x24() {
    let mut s = loaded(false);
    press(&mut s, KeyCode::Down);
    press(&mut s, KeyCode::Down);
    press(&mut s, KeyCode::Down);
    press(&mut s, KeyCode::Enter);
    insta::assert_snapshot!("detail_node4_80x24", draw(&s, Theme::MONO, 80, 24).backend());
}

#[test]
fn drain_confirmation_80x24() {
    let mut s = loaded(true);
    update(&mut s, Event::Key(KeyEvent::new(KeyCode::Char('d'), KeyModifiers::NONE)));
    insta::assert_snapshot!("confirm_drain_80x24", draw(&s, Theme::MONO, 80, 24).backend());
}

#[test]
fn help_80x24() {
    let mut s = loaded(false);
    update(&mut s, Event::Key(KeyEvent::new(KeyCode::Char('?'), KeyModifiers::NONE)));
    insta::assert_snapshot!("help_80x24", draw(&s, Theme::MONO, 80, 24).backend());
    // Taller screens add the column glossary, with what TOTAL means per column.
    let term = draw(&s, Theme::MONO, 120, 40);
    insta::assert_snapshot!("help_120x40", term.backend());
    let t = text(&term);
    assert!(t.contains("◑ cordoned") && t.contains("CPU% is the mean, LAG and PUBSUB the max"), "{t}");
}

#[test]
fn stale_data_and_freeze_are_marked() {
    let mut s = loaded(false);
    update(&mut s, Event::Tick(T0 + 30_000));
    let t = text(&draw(&s, Theme::MONO, 80, 24));
    assert!(t.contains("STALE"), "{t}");
    assert!(t.contains("data 16.0 s old"), "{t}");
    update(&mut s, Event::Key(KeyEvent::new(KeyCode::Char('f'), KeyModifiers::NONE)));
    let t = text(&draw(&s, Theme::MONO, 80, 24));
    assert!(t.contains("FROZEN"), "{t}");
}

#[test]
fn standalone_nodes_before_and_after_data() {
    let mut s = State::new("2 standalone nodes".into(), Duration::from_secs(1), false, Thresholds::default());
    let t = text(&draw(&s, Theme::MONO, 80, 24));
    assert!(t.contains("waiting for the first poll of 2 standalone nodes"), "{t}");
    update(&mut s, Event::Snapshot(Box::new(fixtures::standalone(0))));
    update(&mut s, Event::Snapshot(Box::new(fixtures::standalone(1))));
    update(&mut s, Event::Tick(T0 + 1_300));
    insta::assert_snapshot!("standalone_80x24", draw(&s, Theme::MONO, 80, 24).backend());
}

#[test]
fn mono_theme_has_no_colour_and_colour_theme_marks_the_over_node() {
    let s = loaded(false);
    let mono = draw(&s, Theme::MONO, 80, 24);
    let buf = mono.backend().buffer();
    assert!(buf.content.iter().all(|c| c.fg == Color::Reset && c.bg == Color::Reset));

    let color = draw(&s, Theme::COLOR, 80, 24);
    let t = text(&color);
    let row = t.lines().position(|l| l.starts_with("node-2")).unwrap() as u16;
    let buf = color.backend().buffer();
    let over: Vec<Color> = (0..80).map(|x| buf[(x, row)].fg).collect();
    assert!(over.contains(&Color::LightRed), "{over:?}");
}

fn scenario(polls: Vec<rtc_console::snapshot::ClusterSnapshot>) -> State {
    let mut s = State::new("cluster prod".into(), Duration::from_secs(1), false, Thresholds::default());
    for snap in polls {
        update(&mut s, Event::Snapshot(Box::new(snap)));
    }
    update(&mut s, Event::Tick(T0 + 14_800));
    s
}

#[test]
fn redis_paused_keeps_every_node_and_says_for_how_long() {
    let s = scenario(fixtures::redis_paused());
    for (w, h) in [(80, 24), (120, 40)] {
        let term = draw(&s, Theme::MONO, w, h);
        insta::assert_snapshot!(format!("redis_paused_{w}x{h}"), term.backend());
        let t = text(&term);
        assert!(t.contains("redis DOWN 4s"), "{t}");
        assert!(t.contains("node-1") && t.contains("node-4"), "every node stays listed: {t}");
        assert!(t.contains("◆ degraded"), "{t}");
    }
    // History survives the blip: the sparklines keep every poll.
    let mut s = s;
    press(&mut s, KeyCode::Enter);
    let t = text(&draw(&s, Theme::MONO, 120, 40));
    assert!(t.contains("last 15s"), "{t}");
}

#[test]
fn hung_node_shows_its_growing_buffer_from_redis() {
    let s = scenario(fixtures::hung_node());
    for (w, h) in [(80, 24), (120, 40)] {
        let term = draw(&s, Theme::MONO, w, h);
        insta::assert_snapshot!(format!("hung_node_{w}x{h}"), term.backend());
        let t = text(&term);
        assert!(t.contains("node-3    ✖ down"), "{t}");
        assert!(t.contains("9.0M 112%↑"), "the hung node's buffer is shown: {t}");
    }
}

#[test]
fn restart_is_marked_and_in_the_timeline() {
    let mut s = scenario(fixtures::restarted());
    let term = draw(&s, Theme::MONO, 80, 24);
    insta::assert_snapshot!("restarted_nodes_80x24", term.backend());
    assert!(text(&term).contains("● serving ↻"), "{}", text(&term));
    for _ in 0..3 {
        press(&mut s, KeyCode::Tab);
    }
    for (w, h) in [(80, 24), (120, 40)] {
        let term = draw(&s, Theme::MONO, w, h);
        insta::assert_snapshot!(format!("timeline_{w}x{h}"), term.backend());
        let t = text(&term);
        assert!(t.contains("timeline (4, newest first, UTC)") && t.contains("node-2 restarted"), "{t}");
    }
}
