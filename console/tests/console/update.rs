//! `update(state, event)` is pure: each key and snapshot, one state change.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use rtc_console::figures::Thresholds;
use rtc_console::top::state::{Overlay, SortKey, State, View};
use rtc_console::top::update::{update, Effect, Event};

use crate::fixtures::{self, T0};

fn key(c: char) -> Event {
    Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn code(c: KeyCode) -> Event {
    Event::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

/// A state that has seen the whole fixture cluster.
pub fn loaded(write: bool) -> State {
    let mut s = State::new("cluster prod".into(), Duration::from_secs(1), write, Thresholds::default());
    for snap in fixtures::cluster(false) {
        update(&mut s, Event::Snapshot(Box::new(snap)));
    }
    update(&mut s, Event::Tick(T0 + 14_800));
    s
}

fn ids(s: &State) -> Vec<String> {
    s.visible_nodes().iter().map(|n| n.id.clone()).collect()
}

#[test]
fn quit_keys() {
    let mut s = loaded(false);
    update(&mut s, key('q'));
    assert!(s.quit);
    let mut s = loaded(false);
    update(&mut s, Event::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)));
    assert!(s.quit);
}

#[test]
fn selection_moves_within_bounds() {
    let mut s = loaded(false);
    update(&mut s, code(KeyCode::Up));
    assert_eq!(s.selected, 0);
    for _ in 0..10 {
        update(&mut s, key('j'));
    }
    assert_eq!(s.selected, 4);
    update(&mut s, key('k'));
    assert_eq!(s.selected, 3);
    update(&mut s, key('g'));
    assert_eq!(s.selected, 0);
    update(&mut s, key('G'));
    assert_eq!(s.selected, 4);
}

#[test]
fn enter_opens_detail_and_esc_closes_it() {
    let mut s = loaded(false);
    update(&mut s, code(KeyCode::Down));
    update(&mut s, code(KeyCode::Enter));
    assert_eq!(s.detail.as_deref(), Some("node-2"));
    assert_eq!(s.detail_node().map(|n| n.connections), Some(12_480));
    update(&mut s, code(KeyCode::Esc));
    assert_eq!(s.detail, None);
}

#[test]
fn tab_cycles_views_and_sort_cycles_orders() {
    let mut s = loaded(false);
    update(&mut s, key('j'));
    update(&mut s, code(KeyCode::Tab));
    assert_eq!((s.view, s.selected), (View::Channels, 0));
    assert_eq!(s.visible_channels()[0].name, "prices");
    update(&mut s, code(KeyCode::Tab));
    assert_eq!(s.view, View::Redis);
    update(&mut s, code(KeyCode::BackTab));
    assert_eq!(s.view, View::Channels);
    update(&mut s, key('s'));
    assert_eq!((s.view, s.sort), (View::Nodes, SortKey::Connections));
    assert_eq!(ids(&s), ["node-2", "node-3", "node-1", "node-5", "node-4"]);
    update(&mut s, key('s'));
    assert_eq!(s.sort, SortKey::Cpu);
    assert_eq!(ids(&s)[0], "node-2");
}

#[test]
fn filter_is_typed_kept_and_cleared() {
    let mut s = loaded(false);
    update(&mut s, key('/'));
    assert!(s.editing_filter);
    for c in "de-3q".chars() {
        update(&mut s, key(c));
    }
    // Typing goes to the filter, even `q`.
    assert!(!s.quit);
    update(&mut s, code(KeyCode::Backspace));
    update(&mut s, code(KeyCode::Enter));
    assert!(!s.editing_filter);
    assert_eq!(s.filter, "de-3");
    assert_eq!(ids(&s), ["node-3"]);
    update(&mut s, code(KeyCode::Esc));
    assert_eq!(s.filter, "");
    assert_eq!(ids(&s).len(), 5);
}

#[test]
fn freeze_holds_the_display_until_resumed() {
    let mut s = loaded(false);
    update(&mut s, key('f'));
    let before = s.shown().unwrap().figures.taken_ms;
    update(&mut s, Event::Snapshot(Box::new(fixtures::poll(15, false))));
    assert_eq!(s.shown().unwrap().figures.taken_ms, before);
    assert_eq!(s.live.as_ref().unwrap().figures.taken_ms, T0 + 15_000);
    update(&mut s, key('f'));
    assert_eq!(s.shown().unwrap().figures.taken_ms, T0 + 15_000);
}

#[test]
fn plus_and_minus_step_the_interval() {
    let mut s = loaded(false);
    assert_eq!(update(&mut s, key('+')), [Effect::SetInterval(Duration::from_secs(2))]);
    assert_eq!(update(&mut s, key('-')), [Effect::SetInterval(Duration::from_secs(1))]);
    update(&mut s, key('-'));
    assert_eq!(update(&mut s, key('-')), [Effect::SetInterval(Duration::from_millis(250))]);
    assert_eq!(update(&mut s, key('-')), []);
    assert_eq!(s.interval, Duration::from_millis(250));
}

#[test]
fn drain_is_refused_read_only() {
    let mut s = loaded(false);
    assert_eq!(update(&mut s, key('d')), []);
    assert_eq!(s.overlay, None);
    assert!(s.message.as_ref().unwrap().text.contains("--write"));
}

#[test]
fn drain_asks_with_the_headroom_check_and_needs_shift_y_when_it_fails() {
    let mut s = loaded(true);
    update(&mut s, key('d'));
    let Some(Overlay::ConfirmDrain(h)) = &s.overlay else { panic!("no dialog: {:?}", s.overlay) };
    assert_eq!((h.node.as_str(), h.ok), ("node-1", false));
    assert_eq!(update(&mut s, key('y')), []);
    assert!(s.overlay.is_some());
    assert!(s.message.as_ref().unwrap().text.contains("press Y"));
    assert_eq!(update(&mut s, key('Y')), [Effect::Drain { node: "node-1".into(), url: "http://10.0.0.1:6001".into() }]);
    assert_eq!(s.overlay, None);
    update(&mut s, Event::DrainDone { node: "node-1".into(), result: Err("HTTP 404: not found".into()) });
    assert_eq!(s.message.as_ref().unwrap().text, "drain of node-1 failed: HTTP 404: not found");
    // Messages fade.
    update(&mut s, Event::Tick(T0 + 30_000));
    assert_eq!(s.message, None);
}

#[test]
fn drain_cancel() {
    let mut s = loaded(true);
    update(&mut s, key('d'));
    update(&mut s, key('n'));
    assert_eq!(s.overlay, None);
    update(&mut s, key('d'));
    update(&mut s, code(KeyCode::Esc));
    assert_eq!(s.overlay, None);
}

#[test]
fn help_toggles() {
    let mut s = loaded(false);
    update(&mut s, key('?'));
    assert_eq!(s.overlay, Some(Overlay::Help));
    update(&mut s, key('?'));
    assert_eq!(s.overlay, None);
    update(&mut s, code(KeyCode::F(1)));
    update(&mut s, code(KeyCode::Esc));
    assert_eq!(s.overlay, None);
}

#[test]
fn data_age_and_staleness() {
    let mut s = loaded(false);
    assert_eq!(s.data_age_secs(), Some(0.8));
    assert!(!s.data_is_stale());
    update(&mut s, Event::Tick(T0 + 30_000));
    assert!(s.data_is_stale());
}

#[test]
fn history_is_kept_for_live_nodes() {
    let s = loaded(false);
    let h = &s.shown().unwrap().history;
    assert_eq!(h["node-3"].buffer.len(), 15);
    // node-5 went stale after poll 4: its history stops there.
    assert_eq!(h["node-5"].connections.len(), 5);
}
