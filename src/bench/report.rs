//! The figures of a run, the verdict on what limited them, and their two renderings: a
//! human table and JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::args::DrainWith;
use super::book::DeliverySummary;
use super::histogram::Percentiles;
use super::host::FileLimit;
use super::publish::PublishOutcome;
use super::timeline::{self, Curves, Peak};

/// Share of its cores above which a process counts as saturated.
const SATURATED: f64 = 0.85;
/// Cores used by other processes above which the figures are not clean.
const OTHERS_NOISY: f64 = 0.5;

/// Everything a run measured.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// Scenario name.
    pub scenario: &'static str,
    /// The `--url` loaded.
    pub target: String,
    /// The scenario's flags.
    pub parameters: serde_json::Value,
    /// Seconds of the steady phase (hold, publishing, churn, settling).
    pub steady_seconds: f64,
    /// Limits in force and the ones hit.
    pub limits: Limits,
    /// Ramp and socket figures.
    pub connections: Connections,
    /// The publisher, for fanout and mixed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish: Option<PublishOutcome>,
    /// Deliveries of published events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<Deliveries>,
    /// The presence channel under churn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence: Option<Presence>,
    /// The drain of node A and the reconnects it caused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain: Option<Drain>,
    /// The server's own fan-out figures, with `--stats-token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_fanout: Option<super::node_fanout::ServerFanout>,
    /// The server process, with `--server-pid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<Server>,
    /// The generator's own load.
    pub generator: Generator,
    /// The whole machine's CPU during the steady phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine: Option<Machine>,
    /// What limited the figures.
    pub verdict: Verdict,
    /// Things the reader should know.
    pub warnings: Vec<String>,
}

/// Limits of the generator's machine.
#[derive(Debug, Serialize)]
pub(crate) struct Limits {
    /// Open files of the generator.
    pub open_files: FileLimit,
    /// Local ports per source address.
    pub ephemeral_ports: Option<u32>,
    /// Source addresses used (empty: the kernel's choice).
    pub source_addresses: Vec<String>,
    /// Limits that made sockets fail.
    pub hit: Vec<String>,
}

/// Socket figures.
#[derive(Debug, Serialize)]
pub(crate) struct Connections {
    /// Sockets asked for.
    pub requested: u64,
    /// Sockets started before the deadline.
    pub started: u64,
    /// Sockets that got `connection_established`.
    pub connected: u64,
    /// Sockets whose subscriptions all succeeded.
    pub ready: u64,
    /// Sockets that never became ready.
    pub failed: u64,
    /// Ready sockets lost later.
    pub dropped: u64,
    /// Seconds from the first socket's start to the last one settling.
    pub ramp_seconds: f64,
    /// Asked ramp rate.
    pub ramp_rate_target: f64,
    /// Sockets started per second (the generator keeping to --rate).
    pub ramp_rate_achieved: f64,
    /// TCP connect to `connection_established`.
    pub connect_latency: Percentiles,
    /// First subscribe to last `subscription_succeeded`.
    pub subscribe_latency: Percentiles,
    /// Why sockets failed.
    pub failures: BTreeMap<String, u64>,
    /// Why ready sockets were lost.
    pub drops: BTreeMap<String, u64>,
    /// `pusher:error` frames received after subscribing.
    pub server_errors: BTreeMap<String, u64>,
    /// `pusher:ping` sent by the sockets after idle periods.
    pub pings_sent: u64,
    /// Server pings answered.
    pub pongs_sent: u64,
    /// Client pings with no message back within 30 s.
    pub pongs_missing: u64,
}

/// Delivery figures.
#[derive(Debug, Serialize)]
pub(crate) struct Deliveries {
    /// Counts and latencies.
    #[serde(flatten)]
    pub summary: DeliverySummary,
    /// Copies received per second of publishing.
    pub per_second: f64,
    /// Event frames that were not the bench's.
    pub foreign: u64,
    /// The generator's CPU time to read one event's copies on its largest channel,
    /// spread over its cores (ms): a floor under the measured time to the last
    /// subscriber that comes from the generator, not the server.
    pub generator_read_floor_ms: Option<f64>,
}

/// Presence figures.
#[derive(Debug, Serialize)]
pub(crate) struct Presence {
    /// Members when churn started.
    pub members: u64,
    /// Joins sent.
    pub joins: u64,
    /// Leaves sent.
    pub leaves: u64,
    /// Member frames the joins and leaves owed.
    pub frames_expected: u64,
    /// Member frames received during the steady phase.
    pub frames_received: u64,
    /// Received member frames per second.
    pub frames_per_second: f64,
    /// From the join/leave command to each member frame.
    pub latency: Percentiles,
}

/// The drain of node A and the reconnects it caused. Times are seconds after the
/// trigger; rates are per second, from the busiest one-second window.
#[derive(Debug, Serialize)]
pub(crate) struct Drain {
    /// How node A was made to shed its sockets.
    pub drain_with: DrainWith,
    /// Node A's drain as it reported it: its answer to `POST /admin/drain`, or after a
    /// signal the drain section of its `/admin/stats` (given the admin token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_answer: Option<serde_json::Value>,
    /// Sockets ready on node A when the drain was triggered.
    pub sockets_on_a: u64,
    /// Node A's closes.
    pub closes: Closes,
    /// Arrivals at each survivor.
    pub survivors: Vec<SurvivorArrivals>,
    /// Arrivals at all survivors together.
    pub cluster: Arrivals,
    /// Private-channel signatures for the resubscriptions: the auth requests the app's
    /// backend would answer.
    pub auth_requests: Arrivals,
    /// Expected peak per survivor of a paced drain: sockets / window / survivors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paced_expectation_per_survivor: Option<f64>,
    /// Sockets back, every channel resubscribed, at the end.
    pub back: u64,
    /// When the last socket came back, if every one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub all_back_s: Option<f64>,
    /// When the last socket came back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_back_s: Option<f64>,
    /// From each close to that socket's resubscription on a survivor.
    pub away_time: crate::bench::histogram::Percentiles,
    /// Sockets that were not back at the end.
    pub lost: Lost,
    /// Sockets closed again by a survivor after they came back, by code and reason.
    pub reclosed: BTreeMap<String, u64>,
    /// Reconnect attempts that failed, by reason.
    pub failed_attempts: BTreeMap<String, u64>,
    /// When node A's process was gone (with --server-pid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_a_exit_s: Option<f64>,
    /// Width of a timeline bucket (ms).
    pub bucket_ms: u64,
    /// Counts per bucket since the trigger.
    pub timeline: Curves,
}

/// Node A's closes.
#[derive(Debug, Serialize)]
pub(crate) struct Closes {
    /// Closes after the trigger.
    pub total: u64,
    /// With a reconnect hint (4200–4299): pusher-js reconnects at once.
    pub hinted: u64,
    /// Without one (reset, no close frame, another code): pusher-js waits 1 s or gives up.
    pub forced: u64,
    /// Closes before the trigger (not in the timeline).
    pub before_trigger: u64,
    /// First close.
    pub first_s: Option<f64>,
    /// Last close.
    pub last_s: Option<f64>,
    /// Busiest second of closes.
    pub peak: Peak,
    /// Closes by code and reason.
    pub codes: BTreeMap<String, u64>,
}

/// Arrivals (or signatures) and their busiest second.
#[derive(Debug, Serialize)]
pub(crate) struct Arrivals {
    /// Count after the trigger.
    pub total: u64,
    /// Busiest second.
    pub peak: Peak,
}

/// One survivor's arrivals.
#[derive(Debug, Serialize)]
pub(crate) struct SurvivorArrivals {
    /// Its URL.
    pub url: String,
    /// Arrivals and their busiest second.
    #[serde(flatten)]
    pub arrivals: Arrivals,
}

/// Sockets that were not back at the end of the run.
#[derive(Debug, Serialize)]
pub(crate) struct Lost {
    /// All of them.
    pub total: u64,
    /// Closed with a code pusher-js never reconnects after (4001–4099, ≥ 4300).
    pub gave_up: u64,
    /// Still trying to reconnect.
    pub reconnecting: u64,
    /// Never closed by node A.
    pub still_on_a: u64,
}

/// The server process.
#[derive(Debug, Serialize)]
pub(crate) struct Server {
    /// Its pid.
    pub pid: u32,
    /// Cores it may run on.
    pub cpus_allowed: Option<usize>,
    /// RSS before the ramp (KiB).
    pub rss_before_kib: u64,
    /// RSS at the end of the steady phase (KiB).
    pub rss_after_kib: u64,
    /// RSS growth per open socket (KiB).
    pub rss_per_socket_kib: Option<f64>,
    /// CPU during the steady phase, in cores.
    pub cpu_cores: f64,
    /// Frames the generator received per CPU-second of the server, steady phase.
    pub frames_per_cpu_second: Option<f64>,
}

/// The generator process.
#[derive(Debug, Serialize)]
pub(crate) struct Generator {
    /// Cores it may run on.
    pub cores_available: usize,
    /// CPU during the steady phase, in cores.
    pub cpu_cores: f64,
    /// CPU over the whole run, in seconds.
    pub cpu_seconds_total: f64,
    /// RSS at the end of the steady phase (KiB).
    pub rss_kib: u64,
    /// Frames received per second, steady phase.
    pub frames_per_second: f64,
    /// CPU time per received frame, steady phase (µs).
    pub cpu_us_per_frame: Option<f64>,
}

/// The machine during the steady phase.
#[derive(Debug, Serialize)]
pub(crate) struct Machine {
    /// Cores of the machine.
    pub cores: usize,
    /// Cores busy, every process.
    pub busy_cores: f64,
    /// Cores busy with neither the server nor the generator.
    pub other_processes_cores: f64,
}

/// What limited the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Bottleneck {
    /// Neither side was saturated: the figures are the server's at this load.
    None,
    /// The server used nearly all its cores.
    Server,
    /// The generator used nearly all its cores: the figures understate the server.
    Generator,
    /// Other processes kept the machine busy: the figures are not clean.
    Machine,
    /// Not enough information (no `--server-pid`) or mixed signals.
    Unknown,
}

/// The verdict and the reasons for it.
#[derive(Debug, Serialize)]
pub(crate) struct Verdict {
    /// The limiting side.
    pub bottleneck: Bottleneck,
    /// Why.
    pub notes: Vec<String>,
}

/// Inputs of the verdict.
#[derive(Debug)]
pub(crate) struct VerdictInputs<'a> {
    /// Generator CPU in cores, steady phase.
    pub generator_cores: f64,
    /// Cores the generator may use.
    pub generator_allowed: usize,
    /// Server CPU in cores and cores allowed, when known.
    pub server: Option<(f64, Option<usize>)>,
    /// The generator's and the server's `Cpus_allowed_list`, when both are known.
    pub cpu_lists: Option<(String, String)>,
    /// The publisher, if any.
    pub publish: Option<&'a PublishOutcome>,
    /// The whole machine, if read.
    pub machine: Option<&'a Machine>,
    /// Asked and achieved ramp rates.
    pub ramp: (f64, f64),
    /// Median time to the last subscriber and the generator's read floor under it (ms).
    pub time_to_last: Option<(f64, f64)>,
    /// The servers run beside the generator but are not sampled (drain: node A, the
    /// survivors, redis): their CPU is among "other processes".
    pub unsampled_servers: bool,
}

/// Decides what limited the run.
pub(crate) fn verdict(v: &VerdictInputs<'_>) -> Verdict {
    let mut notes = Vec::new();
    let gen_saturated = v.generator_cores >= SATURATED * v.generator_allowed as f64;
    if gen_saturated {
        notes.push(format!(
            "the generator used {:.2} of its {} cores: it, not the server, set the pace; the server's figures \
             are a lower bound (run the generator on more cores)",
            v.generator_cores, v.generator_allowed
        ));
    }
    let server_saturated = match v.server {
        Some((cores, Some(allowed))) => cores >= SATURATED * allowed as f64,
        Some((cores, None)) => cores >= SATURATED,
        None if v.unsampled_servers => false,
        None => {
            notes.push("give --server-pid to measure the server's CPU and memory".into());
            false
        }
    };
    if let (Some((cores, allowed)), true) = (v.server, server_saturated) {
        notes.push(format!(
            "the server used {cores:.2} of its {} cores: it is saturated at this load",
            allowed.map_or("?".into(), |a| a.to_string())
        ));
    }
    if let Some((generator, server)) = &v.cpu_lists {
        if generator == server {
            notes.push(format!(
                "server and generator share cores {generator}; pin them apart (taskset -c) for clean figures"
            ));
        }
    }
    // Other processes taking half a core (or a quarter of a big machine) already compete
    // with the pinned server and generator.
    let others_busy = v.machine.is_some_and(|m| m.other_processes_cores >= (0.25 * m.cores as f64).max(OTHERS_NOISY));
    let machine_saturated = others_busy && !v.unsampled_servers;
    if let (Some(m), true, true) = (v.machine, others_busy, v.unsampled_servers) {
        notes.push(format!(
            "{:.2} of the machine's {} cores were busy outside the generator: the nodes under test, redis and \
             any other process together (not told apart); rerun when the machine is otherwise quiet",
            m.other_processes_cores, m.cores
        ));
    }
    if let (Some(m), true) = (v.machine, machine_saturated) {
        notes.push(format!(
            "other processes used {2:.2} of the machine's {1} cores ({0:.2} busy in all): rerun when it is quiet",
            m.busy_cores, m.cores, m.other_processes_cores
        ));
    }
    let mut behind = false;
    if let Some(p) = v.publish {
        // A handful of events says nothing about the rate.
        if p.skipped > 0 || (p.attempted >= 10 && p.rate_achieved < 0.95 * p.rate_target) {
            behind = true;
            notes.push(format!(
                "the publisher sent {:.1}/s of the {:.1}/s asked ({} events skipped with 64 requests pending): \
                 the HTTP API answered too slowly",
                p.rate_achieved, p.rate_target, p.skipped
            ));
        }
    }
    // The generator reads one event's copies one after another; when that alone takes
    // half the measured time to the last subscriber, the figure is mostly the generator's.
    let mut read_bound = false;
    if let Some((median, floor)) = v.time_to_last {
        if floor > 0.0 && median > 0.0 && floor >= 0.5 * median {
            read_bound = true;
            notes.push(format!(
                "time to the last subscriber (median {median:.1} ms) is mostly the generator reading every copy: \
                 that alone takes {floor:.1} ms per event here; the server's own figure is lower (spread the \
                 subscribers over more generator cores, or fewer per event)"
            ));
        }
    }
    let (asked, achieved) = v.ramp;
    if achieved < 0.9 * asked {
        notes.push(format!("the generator started {achieved:.0} sockets/s of the {asked:.0}/s asked"));
    }
    let bottleneck = match (gen_saturated, server_saturated) {
        (false, false) if machine_saturated => Bottleneck::Machine,
        (true, false) => Bottleneck::Generator,
        (false, false) if read_bound => Bottleneck::Generator,
        (false, true) => Bottleneck::Server,
        (true, true) => Bottleneck::Unknown,
        (false, false) if v.server.is_none() && !v.unsampled_servers => Bottleneck::Unknown,
        (false, false) if behind => Bottleneck::Server,
        (false, false) => {
            notes.push("neither side was saturated: these are the server's figures at this load".into());
            Bottleneck::None
        }
    };
    Verdict { bottleneck, notes }
}

fn pct(p: &Percentiles) -> String {
    if p.count == 0 {
        return "no samples".into();
    }
    format!(
        "p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  (n={})",
        p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms, p.count
    )
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn tally(out: &mut String, title: &str, t: &BTreeMap<String, u64>) {
    for (why, n) in t {
        let _ = writeln!(out, "  {title:<12}{n:>8} × {why}");
    }
}

impl Report {
    /// The human table.
    pub(crate) fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "rtc bench {} → {}  {}", self.scenario, self.target, self.parameters);
        let l = &self.limits;
        let _ = writeln!(
            o,
            "{:<14}open files {} (soft was {}, hard {}); ephemeral ports {}; sources {}",
            "limits",
            l.open_files.soft,
            l.open_files.soft_before,
            l.open_files.hard,
            l.ephemeral_ports.map_or("?".into(), |p| p.to_string()),
            if l.source_addresses.is_empty() { "kernel's choice".into() } else { l.source_addresses.join(",") }
        );
        for hit in &l.hit {
            let _ = writeln!(o, "  LIMIT HIT   {hit}");
        }
        let c = &self.connections;
        let _ = writeln!(
            o,
            "{:<14}{}/{} ready ({} connected, {} failed, {} dropped later) in {:.2} s, started at {:.0}/s (asked {:.0}/s)",
            "sockets",
            c.ready,
            c.requested,
            c.connected,
            c.failed,
            c.dropped,
            c.ramp_seconds,
            c.ramp_rate_achieved,
            c.ramp_rate_target
        );
        let _ = writeln!(o, "  {:<12}{}", "connect", pct(&c.connect_latency));
        if c.subscribe_latency.count > 0 {
            let _ = writeln!(o, "  {:<12}{}", "subscribe", pct(&c.subscribe_latency));
        }
        tally(&mut o, "failed", &c.failures);
        tally(&mut o, "dropped", &c.drops);
        tally(&mut o, "error", &c.server_errors);
        let _ = writeln!(
            o,
            "  {:<12}{} pings sent, {} server pings answered, {} pongs missing",
            "heartbeat", c.pings_sent, c.pongs_sent, c.pongs_missing
        );
        let _ = writeln!(o, "{:<14}{:.1} s", "steady phase", self.steady_seconds);
        if let Some(p) = &self.publish {
            let _ = writeln!(
                o,
                "{:<14}{} sent at {:.1}/s (asked {:.1}/s): {} accepted, {} failed, {} skipped",
                "publish", p.attempted, p.rate_achieved, p.rate_target, p.accepted, p.failed, p.skipped
            );
            let _ = writeln!(o, "  {:<12}{}", "request", pct(&p.request_latency));
            tally(&mut o, "failed", &p.failures);
        }
        if let Some(d) = &self.deliveries {
            let s = &d.summary;
            let _ = writeln!(
                o,
                "{:<14}{} of {} received, {} LOST, {} duplicates, {} REORDERED, {:.0}/s",
                "deliveries", s.received, s.expected, s.lost, s.duplicates, s.reordered, d.per_second
            );
            if s.reordered_overlapping > 0 {
                let _ = writeln!(
                    o,
                    "  {:<12}{} copies came after a later event whose publish was in flight at the same time \
                     (not a fault: the server may take overlapping publishes in either order)",
                    "overlap", s.reordered_overlapping
                );
            }
            let _ = writeln!(o, "  {:<12}{}", "latency", pct(&s.latency));
            let _ = writeln!(
                o,
                "  {:<12}median {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} events complete, {} incomplete)",
                "to last sub",
                s.time_to_last.p50_ms,
                s.time_to_last.p99_ms,
                s.time_to_last.max_ms,
                s.time_to_last.count,
                s.incomplete_events
            );
            if let Some(floor) = d.generator_read_floor_ms {
                let _ = writeln!(
                    o,
                    "  {:<12}{floor:.2} ms per event (generator CPU to read one event's copies)",
                    "read floor"
                );
            }
        }
        if let Some(f) = &self.server_fanout {
            let ms = |v: Option<f64>| v.map_or_else(|| "–".into(), |v| format!("{v:.2} ms"));
            let le = |v: Option<f64>| v.map_or_else(|| "–".into(), |v| format!("≤ {v:.2} ms"));
            let _ = writeln!(
                o,
                "{:<14}{} broadcasts timed by the node: mean {}, median {}, p99 {} (arrival to the last local socket's write or queue)",
                "node fan-out",
                f.broadcasts,
                ms(f.mean_ms),
                le(f.p50_le_ms),
                le(f.p99_le_ms)
            );
            let _ = writeln!(
                o,
                "  {:<12}last 10 s: median {}, p99 {} (budget {}); measured line {}",
                "node window",
                ms(f.window_p50_ms),
                ms(f.window_p99_ms),
                ms(f.budget_ms),
                f.measured_line.map_or_else(|| "–".into(), |l| format!("{l} sockets"))
            );
        }
        if let Some(p) = &self.presence {
            let _ = writeln!(
                o,
                "{:<14}{} members, {} joins + {} leaves: {} of {} member frames, {:.0}/s",
                "presence", p.members, p.joins, p.leaves, p.frames_received, p.frames_expected, p.frames_per_second
            );
            let _ = writeln!(o, "  {:<12}{}", "latency", pct(&p.latency));
        }
        if let Some(d) = &self.drain {
            d.render(&mut o);
        }
        if let Some(s) = &self.server {
            let _ = writeln!(
                o,
                "{:<14}pid {} on {} cores: RSS {} → {}{}; CPU {:.3} cores{}",
                "server",
                s.pid,
                s.cpus_allowed.map_or("?".into(), |n| n.to_string()),
                mib(s.rss_before_kib),
                mib(s.rss_after_kib),
                s.rss_per_socket_kib.map_or(String::new(), |k| format!(" ({k:.2} KiB per socket)")),
                s.cpu_cores,
                s.frames_per_cpu_second.map_or(String::new(), |f| format!(", {f:.0} frames per CPU-second")),
            );
        }
        let g = &self.generator;
        let _ = writeln!(
            o,
            "{:<14}CPU {:.2} of {} cores ({:.1} CPU-s in all), RSS {}, {:.0} frames/s received{}",
            "generator",
            g.cpu_cores,
            g.cores_available,
            g.cpu_seconds_total,
            mib(g.rss_kib),
            g.frames_per_second,
            g.cpu_us_per_frame.map_or(String::new(), |us| format!(" at {us:.1} µs CPU each"))
        );
        if let Some(m) = &self.machine {
            let _ = writeln!(
                o,
                "{:<14}{:.2} of {} cores busy, {:.2} of them other processes",
                "machine", m.busy_cores, m.cores, m.other_processes_cores
            );
        }
        let name = match self.verdict.bottleneck {
            Bottleneck::None => "none",
            Bottleneck::Server => "SERVER",
            Bottleneck::Generator => "GENERATOR",
            Bottleneck::Machine => "MACHINE (other processes)",
            Bottleneck::Unknown => "unknown",
        };
        let _ = writeln!(o, "{:<14}bottleneck: {name}", "verdict");
        for n in &self.verdict.notes {
            let _ = writeln!(o, "  - {n}");
        }
        for w in &self.warnings {
            let _ = writeln!(o, "warning: {w}");
        }
        o
    }
}

fn secs(v: Option<f64>) -> String {
    v.map_or("-".into(), |s| format!("{s:.2} s"))
}

fn peak_text(p: &Peak) -> String {
    format!(
        "peak {}/s (busiest second from {:.1} s; busiest 100 ms at {}/s)",
        p.per_second, p.from_s, p.bucket_per_second
    )
}

impl Drain {
    fn render(&self, o: &mut String) {
        let how = match self.drain_with {
            DrainWith::Admin => "POST /admin/drain",
            DrainWith::Signal => "SIGTERM",
            DrainWith::Kill => "SIGKILL",
        };
        let answer = self.node_answer.as_ref().map_or(String::new(), |a| format!("; node A reported {a}"));
        let _ = writeln!(o, "{:<14}{how} at t = 0 with {} sockets on node A{answer}", "drain", self.sockets_on_a);
        let c = &self.closes;
        let _ = writeln!(
            o,
            "  {:<12}{} ({} hints 42xx, {} forced), first {} last {}; {}",
            "closes",
            c.total,
            c.hinted,
            c.forced,
            secs(c.first_s),
            secs(c.last_s),
            peak_text(&c.peak)
        );
        if c.before_trigger > 0 {
            let _ = writeln!(o, "  {:<12}{} closes before the trigger", "", c.before_trigger);
        }
        tally(o, "close code", &c.codes);
        for (i, s) in self.survivors.iter().enumerate() {
            let _ = writeln!(
                o,
                "  {:<12}{} arrivals, {}  ({})",
                format!("survivor {}", i + 1),
                s.arrivals.total,
                peak_text(&s.arrivals.peak),
                s.url
            );
        }
        let _ = writeln!(o, "  {:<12}{} arrivals, {}", "cluster", self.cluster.total, peak_text(&self.cluster.peak));
        if let Some(e) = self.paced_expectation_per_survivor {
            let _ = writeln!(o, "  {:<12}{e:.0}/s per survivor (sockets / window / survivors)", "paced ideal");
        }
        let _ = writeln!(
            o,
            "  {:<12}{} signatures, {}",
            "auth",
            self.auth_requests.total,
            peak_text(&self.auth_requests.peak)
        );
        let all = self.all_back_s.map_or("NOT all back".into(), |s| format!("all back at {s:.2} s"));
        let _ = writeln!(
            o,
            "  {:<12}{}/{} back, {all}; close → resubscribed {}",
            "back",
            self.back,
            self.sockets_on_a,
            pct(&self.away_time)
        );
        let l = &self.lost;
        let _ = writeln!(
            o,
            "  {:<12}{} ({} gave up, {} still reconnecting, {} never closed by node A)",
            "lost", l.total, l.gave_up, l.reconnecting, l.still_on_a
        );
        tally(o, "re-closed", &self.reclosed);
        tally(o, "failed try", &self.failed_attempts);
        if let Some(t) = self.node_a_exit_s {
            let _ = writeln!(o, "  {:<12}process gone at {t:.2} s", "node A");
        }
        let closes = timeline::per_second(&self.timeline.closes);
        let arrivals: Vec<Vec<u32>> = self.timeline.arrivals.iter().map(|a| timeline::per_second(a)).collect();
        let auth = timeline::per_second(&self.timeline.auth_requests);
        if closes.is_empty() && arrivals.iter().all(Vec::is_empty) {
            return;
        }
        let mut head = format!("  {:<12}{:>8}", "second", "closes");
        for i in 0..arrivals.len() {
            head.push_str(&format!("{:>12}", format!("survivor {}", i + 1)));
        }
        head.push_str(&format!("{:>8}", "auth"));
        let _ = writeln!(o, "{head}");
        let rows = closes.len().max(auth.len()).max(arrivals.iter().map(Vec::len).max().unwrap_or(0));
        let at = |v: &[u32], i: usize| v.get(i).copied().unwrap_or(0);
        let quiet = |i: usize| at(&closes, i) == 0 && at(&auth, i) == 0 && arrivals.iter().all(|a| at(a, i) == 0);
        let mut skipping = false;
        for i in 0..rows {
            // A run of quiet seconds shows as its first second and one "…" row.
            if i > 0 && quiet(i) && quiet(i - 1) {
                if !skipping {
                    let _ = writeln!(o, "  …");
                    skipping = true;
                }
                continue;
            }
            skipping = false;
            let mut line = format!("  {:<12}{:>8}", format!("{i}–{}", i + 1), at(&closes, i));
            for a in &arrivals {
                line.push_str(&format!("{:>12}", at(a, i)));
            }
            line.push_str(&format!("{:>8}", at(&auth, i)));
            let _ = writeln!(o, "{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(generator_cores: f64, server: Option<(f64, Option<usize>)>) -> VerdictInputs<'static> {
        VerdictInputs {
            generator_cores,
            generator_allowed: 1,
            server,
            cpu_lists: None,
            publish: None,
            machine: None,
            ramp: (100.0, 100.0),
            time_to_last: None,
            unsampled_servers: false,
        }
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict(&inputs(0.95, Some((0.3, Some(1))))).bottleneck, Bottleneck::Generator);
        assert_eq!(verdict(&inputs(0.3, Some((0.95, Some(1))))).bottleneck, Bottleneck::Server);
        assert_eq!(verdict(&inputs(0.3, Some((0.3, Some(1))))).bottleneck, Bottleneck::None);
        assert_eq!(verdict(&inputs(0.3, None)).bottleneck, Bottleneck::Unknown);
        let v = verdict(&inputs(0.95, None));
        assert_eq!(v.bottleneck, Bottleneck::Generator);
        assert!(v.notes.iter().any(|n| n.contains("lower bound")));
        let busy = Machine { cores: 2, busy_cores: 1.9, other_processes_cores: 1.2 };
        let v = verdict(&VerdictInputs { machine: Some(&busy), ..inputs(0.3, Some((0.4, Some(1)))) });
        assert_eq!(v.bottleneck, Bottleneck::Machine);
        let v = verdict(&VerdictInputs { time_to_last: Some((30.0, 20.0)), ..inputs(0.6, Some((0.4, Some(1)))) });
        assert_eq!(v.bottleneck, Bottleneck::Generator);
        let v = verdict(&VerdictInputs { time_to_last: Some((30.0, 5.0)), ..inputs(0.6, Some((0.4, Some(1)))) });
        assert_eq!(v.bottleneck, Bottleneck::None);
        // A drain: the nodes are not sampled; their CPU is not "other processes".
        let v = verdict(&VerdictInputs { machine: Some(&busy), unsampled_servers: true, ..inputs(0.3, None) });
        assert_eq!(v.bottleneck, Bottleneck::None);
        assert!(v.notes.iter().all(|n| !n.contains("--server-pid")), "{:?}", v.notes);
    }
}
