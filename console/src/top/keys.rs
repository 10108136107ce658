//! The key table: one list that both dispatches keys and renders the footer hints and
//! the help screen, so the two can never disagree (k9s's `KeyActions` feed its menu).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Leave `rtc top`.
    Quit,
    /// Toggle the help screen.
    Help,
    /// Selection up.
    Up,
    /// Selection down.
    Down,
    /// First row.
    First,
    /// Last row.
    Last,
    /// Open the selected node's detail.
    Open,
    /// Close the detail, dialog or filter.
    Back,
    /// Next sort order.
    Sort,
    /// Next view.
    NextView,
    /// Previous view.
    PrevView,
    /// Start typing a filter.
    Filter,
    /// Freeze or resume the display.
    Freeze,
    /// Poll less often.
    Slower,
    /// Poll more often.
    Faster,
    /// Drain the selected node (asks first; `--write` only).
    Drain,
    /// Confirm the dialog.
    Confirm,
    /// Confirm although the capacity check failed.
    ConfirmAnyway,
    /// Dismiss the dialog.
    Cancel,
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// The dashboard.
    Main,
    /// The drain confirmation.
    Confirm,
}

/// A key as written in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A printable character (case-sensitive).
    Char(char),
    /// Control plus a letter.
    Ctrl(char),
    /// A non-printing key.
    Code(KeyCode),
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    /// Keys that trigger it.
    pub keys: &'static [Key],
    /// How the keys are written in hints (`↑/k`).
    pub hint: &'static str,
    /// One or two words for the footer.
    pub label: &'static str,
    /// A sentence for the help screen.
    pub help: &'static str,
    /// The action.
    pub action: Action,
    /// Where it applies.
    pub context: Context,
    /// Footer priority: lower shows first when space is short; `None` = help screen only.
    pub footer: Option<u8>,
    /// Only with `--write`.
    pub write: bool,
}

const fn b(
    keys: &'static [Key],
    hint: &'static str,
    label: &'static str,
    help: &'static str,
    action: Action,
    footer: Option<u8>,
) -> Binding {
    Binding { keys, hint, label, help, action, context: Context::Main, footer, write: false }
}

/// The column glossary, shown under `?` and in `man rtc-top`.
pub const COLUMNS: &[(&str, &str)] = &[
    ("CONNS", "open sockets; ! near the planning line, ▲ over it"),
    ("vs line", "bar against the planning line (┃), ▓ past it"),
    ("CPU%", "process CPU, percent of one core"),
    ("PUBSUB", "Redis's buffer for the node, % of its soft limit"),
    ("LAG", "event-loop lag; BUS: publish-to-receipt lag on the bus"),
    ("FAN99", "fan-out p99 (10 s), arrival to last write; ! over budget"),
    ("OUT/S +/S -/S", "frames out, connects, disconnects per second"),
    ("PRES AUTH/S FAIL", "presence share, auth requests/s, failures/s"),
    ("TOTAL", "sums; CPU% is the mean, LAG and PUBSUB the max; – unknown"),
];

/// `man rtc-top`'s extra section: every key and every column.
pub const MANUAL: &str = "Keys: q or Ctrl-c quit; ? or F1 help; Up/k and Down/j move the selection; \
g/Home first row; G/End last row; Enter opens the selected node's detail; Esc closes the detail, help \
or filter; Tab and Shift-Tab switch views (nodes, channels, redis, timeline); s next sort order; / \
filter by name (Enter keeps, Esc clears); f freeze or resume; + (or =) and - poll less or more often; d \
drains the selected node after a capacity check (--write only; y confirms, Y drains although the \
check failed, n or Esc cancels).

States: ● serving, ○ starting, ◐ draining, ◑ cordoned, ◆ degraded (cut off from the bus), ◌ drained \
(exited after a drain), ✖ down (no heartbeat, no drain) or unreachable, ↻ restarted recently, ⚠ \
untrusted (a registry entry that failed the trust check: never acted on).

Columns: CONNS open sockets (! near the planning line, ▲ over it); vs line: bar against the planning \
line; CPU% process CPU, percent of one core; PUBSUB Redis's output buffer for the node's subscriber \
(from CLIENT LIST, also for a node that does not answer) and its share of Redis's pub/sub soft limit, \
with ↑ rising; LAG event-loop lag; FAN99 fan-out time p99 over the last 10 s, arrival to the \
last local subscriber's write or queue (! over the node's budget); OUT/S frames out per second; +/S -/S connects and disconnects per \
second; PRES presence share of frames; AUTH/S auth requests; FAIL signature failures; PONG/S pongs; \
BUS publish-to-receipt lag; RSS memory; BC/S broadcasts; UP uptime; VERSION. TOTAL row: sums, except \
CPU% (mean), LAG and PUBSUB (max). Unknown values show as –.

Header: the source, nodes up of known, Redis ok or DOWN with how long (the console then polls every \
node it has seen directly), the data's age.";

/// Every binding, in help-screen order.
pub const BINDINGS: &[Binding] = &[
    b(&[Key::Char('q'), Key::Ctrl('c')], "q", "quit", "quit", Action::Quit, Some(0)),
    b(&[Key::Char('?'), Key::Code(KeyCode::F(1))], "?", "help", "show or hide this help", Action::Help, Some(1)),
    b(&[Key::Code(KeyCode::Up), Key::Char('k')], "↑↓", "select", "move the selection up", Action::Up, Some(2)),
    b(&[Key::Code(KeyCode::Down), Key::Char('j')], "", "", "move the selection down", Action::Down, None),
    b(&[Key::Code(KeyCode::Home), Key::Char('g')], "g", "first", "first row", Action::First, None),
    b(&[Key::Code(KeyCode::End), Key::Char('G')], "G", "last", "last row", Action::Last, None),
    b(&[Key::Code(KeyCode::Enter)], "⏎", "detail", "open the selected node's detail", Action::Open, Some(3)),
    b(&[Key::Code(KeyCode::Esc)], "Esc", "back", "close the detail, help or filter", Action::Back, None),
    b(
        &[Key::Code(KeyCode::Tab)],
        "Tab",
        "view",
        "next view: nodes, channels, redis, timeline",
        Action::NextView,
        Some(4),
    ),
    b(&[Key::Code(KeyCode::BackTab)], "S-Tab", "prev view", "previous view", Action::PrevView, None),
    b(&[Key::Char('s')], "s", "sort", "next sort order for nodes", Action::Sort, Some(5)),
    b(&[Key::Char('/')], "/", "filter", "filter nodes or channels by name", Action::Filter, Some(6)),
    b(&[Key::Char('f')], "f", "freeze", "freeze or resume the display", Action::Freeze, Some(7)),
    b(
        &[Key::Char('+'), Key::Char('=')],
        "+-",
        "interval",
        "poll less often (- polls more often)",
        Action::Slower,
        Some(9),
    ),
    b(&[Key::Char('-'), Key::Char('_')], "", "", "", Action::Faster, None),
    Binding {
        write: true,
        ..b(&[Key::Char('d')], "d", "drain", "drain the selected node (asks first)", Action::Drain, Some(8))
    },
    Binding {
        context: Context::Confirm,
        ..b(&[Key::Char('y')], "y", "drain", "confirm the drain", Action::Confirm, Some(0))
    },
    Binding {
        context: Context::Confirm,
        ..b(
            &[Key::Char('Y')],
            "Y",
            "drain anyway",
            "drain although the capacity check failed",
            Action::ConfirmAnyway,
            Some(1),
        )
    },
    Binding {
        context: Context::Confirm,
        ..b(&[Key::Char('n'), Key::Code(KeyCode::Esc)], "n/Esc", "cancel", "keep the node", Action::Cancel, Some(2))
    },
    Binding { context: Context::Confirm, ..b(&[Key::Ctrl('c')], "", "", "", Action::Quit, None) },
];

/// The key of a terminal event, normalised.
pub fn key_of(ev: &KeyEvent) -> Key {
    match ev.code {
        KeyCode::Char(c) if ev.modifiers.contains(KeyModifiers::CONTROL) => Key::Ctrl(c.to_ascii_lowercase()),
        KeyCode::Char(c) => Key::Char(c),
        code => Key::Code(code),
    }
}

/// The action bound to `key` in `context`; write actions only when `write`.
pub fn action_for(key: Key, context: Context, write: bool) -> Option<Action> {
    BINDINGS
        .iter()
        .filter(|b| b.context == context && (write || !b.write))
        .find(|b| b.keys.contains(&key))
        .map(|b| b.action)
}

/// Footer hints `(keys, label)` for `context`, most important first.
pub fn hints(context: Context, write: bool) -> Vec<(&'static str, &'static str)> {
    let mut v: Vec<&Binding> =
        BINDINGS.iter().filter(|b| b.context == context && b.footer.is_some() && (write || !b.write)).collect();
    v.sort_by_key(|b| b.footer);
    v.into_iter().map(|b| (b.hint, b.label)).collect()
}

/// Help-screen lines `(keys, sentence)` for the dashboard.
pub fn help_lines(write: bool) -> Vec<(String, &'static str)> {
    BINDINGS
        .iter()
        .filter(|b| b.context == Context::Main && !b.help.is_empty() && (write || !b.write))
        .map(|b| {
            let keys: Vec<String> = b.keys.iter().map(|k| key_name(*k)).collect();
            (keys.join(" "), b.help)
        })
        .collect()
}

fn key_name(k: Key) -> String {
    match k {
        Key::Char(c) => c.to_string(),
        Key::Ctrl(c) => format!("Ctrl-{c}"),
        Key::Code(KeyCode::Up) => "↑".into(),
        Key::Code(KeyCode::Down) => "↓".into(),
        Key::Code(KeyCode::Enter) => "Enter".into(),
        Key::Code(KeyCode::Esc) => "Esc".into(),
        Key::Code(KeyCode::Tab) => "Tab".into(),
        Key::Code(KeyCode::BackTab) => "Shift-Tab".into(),
        Key::Code(KeyCode::Home) => "Home".into(),
        Key::Code(KeyCode::End) => "End".into(),
        Key::Code(KeyCode::F(n)) => format!("F{n}"),
        Key::Code(other) => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_bound_once_per_context() {
        for ctx in [Context::Main, Context::Confirm] {
            let mut seen = Vec::new();
            for b in BINDINGS.iter().filter(|b| b.context == ctx) {
                for k in b.keys {
                    assert!(!seen.contains(k), "{k:?} bound twice in {ctx:?}");
                    seen.push(*k);
                }
            }
        }
    }

    #[test]
    fn drain_needs_write() {
        assert_eq!(action_for(Key::Char('d'), Context::Main, false), None);
        assert_eq!(action_for(Key::Char('d'), Context::Main, true), Some(Action::Drain));
        assert!(!hints(Context::Main, false).iter().any(|(_, l)| *l == "drain"));
        assert!(hints(Context::Main, true).iter().any(|(_, l)| *l == "drain"));
    }

    #[test]
    fn ctrl_c_quits_everywhere() {
        let ev = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action_for(key_of(&ev), Context::Main, false), Some(Action::Quit));
        assert_eq!(action_for(key_of(&ev), Context::Confirm, false), Some(Action::Quit));
    }
}

#[cfg(test)]
mod manual_tests {
    use super::*;

    #[test]
    fn the_manual_names_every_key_and_view() {
        for b in BINDINGS.iter().filter(|b| !b.help.is_empty()) {
            for k in b.keys {
                let name = match k {
                    Key::Char(c) => c.to_string(),
                    Key::Ctrl(c) => format!("Ctrl-{c}"),
                    Key::Code(KeyCode::Up) => "Up".into(),
                    Key::Code(KeyCode::Down) => "Down".into(),
                    Key::Code(c) => key_name(Key::Code(*c)),
                };
                assert!(MANUAL.contains(&name), "{name} missing from MANUAL");
            }
        }
        for (col, _) in COLUMNS {
            for word in col.split_whitespace().filter(|w| *w != "line") {
                assert!(MANUAL.contains(word), "{word} missing from MANUAL");
            }
        }
    }
}
