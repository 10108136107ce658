//! Styles. Two themes: colour (a blue/yellow/red palette that stays readable with
//! red-green colour blindness) and mono (`NO_COLOR`, `--no-color`: bold, dim and reverse
//! only). Every state also has a glyph, so colour is never the only signal.

use ratatui::style::{Color, Modifier, Style};

use crate::alerts::Severity;
use crate::figures::Health;

/// The styles views draw with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    color: bool,
}

impl Theme {
    /// The colour theme.
    pub const COLOR: Theme = Theme { color: true };
    /// The monochrome theme.
    pub const MONO: Theme = Theme { color: false };

    /// Mono when `--no-color` is given or `NO_COLOR` is set to anything non-empty
    /// (no-color.org), else colour.
    pub fn from_env(no_color_flag: bool) -> Theme {
        let env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        if no_color_flag || env {
            Theme::MONO
        } else {
            Theme::COLOR
        }
    }

    /// Whether colours are used.
    pub fn has_color(&self) -> bool {
        self.color
    }

    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    /// Plain text.
    pub fn text(&self) -> Style {
        Style::new()
    }

    /// Titles and column headers.
    pub fn title(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    /// Secondary text, stale figures.
    pub fn dim(&self) -> Style {
        self.fg(Color::DarkGray).add_modifier(Modifier::DIM)
    }

    /// Healthy.
    pub fn ok(&self) -> Style {
        self.fg(Color::Blue)
    }

    /// Attention.
    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    /// Act now.
    pub fn crit(&self) -> Style {
        self.fg(Color::LightRed).add_modifier(Modifier::BOLD)
    }

    /// The selected row.
    pub fn selected(&self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    /// Key names in hints.
    pub fn key(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    /// The planning-line marker in bars.
    pub fn marker(&self) -> Style {
        self.fg(Color::White).add_modifier(Modifier::BOLD)
    }

    /// A severity's style.
    pub fn severity(&self, s: Severity) -> Style {
        match s {
            Severity::Info => self.fg(Color::Blue),
            Severity::Warning => self.warn(),
            Severity::Critical => self.crit(),
        }
    }

    /// A node state's style.
    pub fn health(&self, h: Health) -> Style {
        match h {
            Health::Serving => self.ok(),
            Health::Starting | Health::Draining | Health::Cordoned => self.warn(),
            Health::Degraded | Health::Stale | Health::Unreachable | Health::Untrusted => self.crit(),
            Health::Unknown | Health::Drained => self.dim(),
        }
    }

    /// Style for a fraction of a limit: ok, warn at `warn`, crit above 1.
    pub fn level(&self, fraction: f64, warn: f64) -> Style {
        if fraction > 1.0 {
            self.crit()
        } else if fraction >= warn {
            self.warn()
        } else {
            self.ok()
        }
    }
}
