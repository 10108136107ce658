//! The dashboard's state: data only. [`super::update::update`] changes it, [`super::view::draw`] reads it.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::capacity::Headroom;
use crate::figures::{ChannelFigures, ClusterFigures, NodeFigures, Thresholds, Tracker};

/// Points of history kept per node and metric: 10 minutes at the default 1 s interval
/// (bottom keeps 10 minutes too).
pub const HISTORY_POINTS: usize = 600;

/// Which table fills the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// One row per node.
    Nodes,
    /// The most expensive channels.
    Channels,
    /// Redis's own figures and the nodes' subscriber buffers.
    Redis,
    /// The incident timeline the nodes write, newest first.
    Timeline,
}

impl View {
    /// The next view (`Tab`).
    pub fn next(self) -> View {
        match self {
            View::Nodes => View::Channels,
            View::Channels => View::Redis,
            View::Redis => View::Timeline,
            View::Timeline => View::Nodes,
        }
    }

    /// The previous view (`Shift-Tab`).
    pub fn prev(self) -> View {
        match self {
            View::Nodes => View::Timeline,
            View::Timeline => View::Redis,
            View::Channels => View::Nodes,
            View::Redis => View::Channels,
        }
    }

    /// Title shown in the tab strip.
    pub fn title(self) -> &'static str {
        match self {
            View::Nodes => "nodes",
            View::Channels => "channels",
            View::Redis => "redis",
            View::Timeline => "timeline",
        }
    }
}

/// Node table order (`s` cycles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// By id.
    Id,
    /// Most connections first.
    Connections,
    /// Busiest CPU first.
    Cpu,
    /// Most frames out per second first.
    FramesOut,
    /// Largest pub/sub buffer first.
    Buffer,
    /// Worst loop lag first.
    LoopLag,
}

impl SortKey {
    /// The next order.
    pub fn next(self) -> SortKey {
        match self {
            SortKey::Id => SortKey::Connections,
            SortKey::Connections => SortKey::Cpu,
            SortKey::Cpu => SortKey::FramesOut,
            SortKey::FramesOut => SortKey::Buffer,
            SortKey::Buffer => SortKey::LoopLag,
            SortKey::LoopLag => SortKey::Id,
        }
    }

    /// Short name for the table title.
    pub fn label(self) -> &'static str {
        match self {
            SortKey::Id => "id",
            SortKey::Connections => "conns",
            SortKey::Cpu => "cpu",
            SortKey::FramesOut => "out/s",
            SortKey::Buffer => "pub/sub buf",
            SortKey::LoopLag => "lag",
        }
    }
}

/// A dialog over the body.
#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    /// Key and glyph reference.
    Help,
    /// "Drain this node?" with the capacity check.
    ConfirmDrain(Headroom),
}

/// A line in the footer that fades after a few seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The text.
    pub text: String,
    /// Whether it reports a failure.
    pub error: bool,
    /// When it was set, unix ms.
    pub at_ms: u64,
}

/// A fixed-size ring of samples for sparklines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series(VecDeque<u64>);

impl Series {
    /// Appends a sample, dropping the oldest beyond [`HISTORY_POINTS`].
    pub fn push(&mut self, v: u64) {
        if self.0.len() == HISTORY_POINTS {
            self.0.pop_front();
        }
        self.0.push_back(v);
    }

    /// The last `n` samples, squeezed into at most `width` points (max of each bucket,
    /// so that a spike never disappears).
    pub fn last(&self, n: usize, width: usize) -> Vec<u64> {
        let tail: Vec<u64> = self.0.iter().skip(self.0.len().saturating_sub(n)).copied().collect();
        if width == 0 || tail.len() <= width {
            return tail;
        }
        let per = tail.len().div_ceil(width);
        tail.chunks(per).map(|c| c.iter().copied().max().unwrap_or(0)).collect()
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Sparkline history of one node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeHistory {
    /// Open sockets.
    pub connections: Series,
    /// CPU percent (of one core).
    pub cpu: Series,
    /// Frames out per second.
    pub frames_out: Series,
    /// Pub/sub buffer bytes (or backlog when Redis's view is unknown).
    pub buffer: Series,
    /// Loop lag, ms.
    pub loop_lag: Series,
    /// Fan-out p99, µs.
    pub fanout_p99: Series,
}

impl NodeHistory {
    /// Records a node's live figures.
    pub fn record(&mut self, n: &NodeFigures) {
        self.connections.push(n.connections);
        self.cpu.push(n.cpu_percent.round() as u64);
        self.frames_out.push(n.frames_out_per_s.unwrap_or(0.0).round() as u64);
        let buf = n.pubsub.as_ref().map_or(0, |p| p.buffer_bytes.unwrap_or(p.backlog));
        self.buffer.push(buf);
        self.loop_lag.push(n.loop_lag_ms.round() as u64);
        self.fanout_p99.push(n.fanout.as_ref().and_then(|f| f.p99_ms).map_or(0, |ms| (ms * 1000.0).round() as u64));
    }
}

/// Figures plus history: what one frame is drawn from. Cloned when frozen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dataset {
    /// The latest figures.
    pub figures: ClusterFigures,
    /// History by node id.
    pub history: BTreeMap<String, NodeHistory>,
}

/// The whole dashboard state.
#[derive(Debug, Clone)]
pub struct State {
    /// `cluster prod`, `2 nodes`, …
    pub source_label: String,
    /// `--write` given.
    pub write: bool,
    /// Current poll interval.
    pub interval: Duration,
    /// The clock, unix ms (advanced by ticks and snapshots).
    pub now_ms: u64,
    /// Derives figures from snapshots.
    pub tracker: Tracker,
    /// Latest data.
    pub live: Option<Dataset>,
    /// Data held on screen by `f`.
    pub frozen: Option<Dataset>,
    /// Table in the body.
    pub view: View,
    /// Node shown in detail (`Enter`).
    pub detail: Option<String>,
    /// Dialog on top.
    pub overlay: Option<Overlay>,
    /// Selected row in the current table.
    pub selected: usize,
    /// Node order.
    pub sort: SortKey,
    /// Substring filter on node ids and channel names.
    pub filter: String,
    /// Whether keys are typed into the filter.
    pub editing_filter: bool,
    /// Footer message.
    pub message: Option<Message>,
    /// Set when the user quits.
    pub quit: bool,
}

impl State {
    /// A fresh state before any data.
    pub fn new(source_label: String, interval: Duration, write: bool, thresholds: Thresholds) -> Self {
        State {
            source_label,
            write,
            interval,
            now_ms: 0,
            tracker: Tracker::new(thresholds),
            live: None,
            frozen: None,
            view: View::Nodes,
            detail: None,
            overlay: None,
            selected: 0,
            sort: SortKey::Id,
            filter: String::new(),
            editing_filter: false,
            message: None,
            quit: false,
        }
    }

    /// The data on screen: frozen if frozen, else live.
    pub fn shown(&self) -> Option<&Dataset> {
        self.frozen.as_ref().or(self.live.as_ref())
    }

    /// Age of the data on screen, seconds.
    pub fn data_age_secs(&self) -> Option<f64> {
        self.shown().map(|d| self.now_ms.saturating_sub(d.figures.taken_ms) as f64 / 1000.0)
    }

    /// Whether the data on screen is older than two polls plus the collector's timeouts
    /// (the collector is stuck or the source is slow): numbers are dimmed and marked.
    pub fn data_is_stale(&self) -> bool {
        let limit = 2.0 * self.interval.as_secs_f64() + 2.0 * crate::client::HTTP_TIMEOUT.as_secs_f64();
        self.frozen.is_none() && self.data_age_secs().is_some_and(|a| a > limit)
    }

    /// Nodes after the filter, in the chosen order.
    pub fn visible_nodes(&self) -> Vec<&NodeFigures> {
        let Some(d) = self.shown() else { return Vec::new() };
        let f = self.filter.to_lowercase();
        let mut nodes: Vec<&NodeFigures> =
            d.figures.nodes.iter().filter(|n| f.is_empty() || n.id.to_lowercase().contains(&f)).collect();
        let key = |n: &NodeFigures| -> f64 {
            match self.sort {
                SortKey::Id => 0.0,
                SortKey::Connections => n.connections as f64,
                SortKey::Cpu => n.cpu_percent,
                SortKey::FramesOut => n.frames_out_per_s.unwrap_or(0.0),
                SortKey::Buffer => n.pubsub.as_ref().map_or(0.0, |p| p.buffer_bytes.unwrap_or(p.backlog) as f64),
                SortKey::LoopLag => n.loop_lag_ms,
            }
        };
        nodes.sort_by(|a, b| key(b).total_cmp(&key(a)).then_with(|| a.id.cmp(&b.id)));
        nodes
    }

    /// Channels after the filter (already ordered by frames out per second).
    pub fn visible_channels(&self) -> Vec<&ChannelFigures> {
        let Some(d) = self.shown() else { return Vec::new() };
        let f = self.filter.to_lowercase();
        d.figures.channels.iter().filter(|c| f.is_empty() || c.name.to_lowercase().contains(&f)).collect()
    }

    /// Rows in the current table (for moving the selection).
    pub fn row_count(&self) -> usize {
        match self.view {
            View::Nodes | View::Redis => self.visible_nodes().len(),
            View::Channels => self.visible_channels().len(),
            View::Timeline => self.timeline().len(),
        }
    }

    /// The selected node (nodes and Redis views).
    pub fn selected_node(&self) -> Option<&NodeFigures> {
        match self.view {
            View::Nodes | View::Redis => self.visible_nodes().get(self.selected).copied(),
            View::Channels | View::Timeline => None,
        }
    }

    /// The timeline entries on screen (newest first), after the filter (node or kind).
    pub fn timeline(&self) -> Vec<&crate::model::TimelineEntry> {
        let Some(d) = self.shown() else { return Vec::new() };
        let f = self.filter.to_lowercase();
        d.figures
            .redis
            .as_ref()
            .map(|r| {
                r.timeline
                    .iter()
                    .filter(|e| f.is_empty() || e.node.to_lowercase().contains(&f) || e.kind.contains(&f))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The node shown in detail, if it is still known.
    pub fn detail_node(&self) -> Option<&NodeFigures> {
        let id = self.detail.as_deref()?;
        self.shown()?.figures.node(id)
    }
}
