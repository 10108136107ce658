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

/// On NATS (and a Redis Cluster) the registry is read but Redis's own figures and the
/// timeline are not there: the views say so instead of showing zeros or an error.
#[test]
fn other_engines_show_redis_only_panels_as_not_available() {
    use rtc_console::model::Engine;
    use rtc_console::snapshot::{RedisSample, NOT_AVAILABLE_REDIS_FIGURES, NOT_AVAILABLE_TIMELINE};
    for engine in [Engine::Nats, Engine::RedisCluster] {
        let polls = fixtures::cluster(false)
            .into_iter()
            .map(|mut snap| {
                let mut not_available = NOT_AVAILABLE_REDIS_FIGURES.to_vec();
                if engine == Engine::Nats {
                    not_available.push(NOT_AVAILABLE_TIMELINE);
                }
                snap.redis = Some(RedisSample { engine, not_available, ..RedisSample::default() });
                for n in &mut snap.nodes {
                    n.pubsub_omem = None;
                }
                snap
            })
            .collect();
        let mut s = scenario(polls);
        let name = engine.as_str();
        let t = text(&draw(&s, Theme::MONO, 120, 40));
        assert!(t.contains(&format!("4/5 nodes · {name} ok")), "{t}");
        assert!(t.contains(&format!("{name} ✓ registry read")), "{t}");
        assert!(t.contains("node-1") && t.contains("◐ drain 42%"), "the nodes table works: {t}");
        assert!(t.contains("n/a") && !t.contains("     ?"), "no CLIENT LIST buffer on this engine: {t}");
        press(&mut s, KeyCode::Tab);
        press(&mut s, KeyCode::Tab);
        let t = text(&draw(&s, Theme::MONO, 120, 40));
        assert!(t.contains(&format!("Redis's own figures are not available with the {name} engine")), "{t}");
        assert!(!t.contains("unreachable") && !t.contains("used memory"), "{t}");
        assert!(t.contains("BUS LAG") && t.contains("node-3"), "the nodes' own bus figures stay: {t}");
        press(&mut s, KeyCode::Tab);
        let t = text(&draw(&s, Theme::MONO, 120, 40));
        if engine == Engine::Nats {
            assert!(t.contains("the timeline is not available with the nats engine"), "{t}");
        } else {
            assert!(t.contains("nothing recorded yet"), "a Redis Cluster keeps the timeline: {t}");
        }
    }
}
