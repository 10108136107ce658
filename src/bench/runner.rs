//! The frame every scenario runs in: limits and target at start, the ramp, a measured
//! steady phase, then teardown into a [`Report`].

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout, Instant};
use tokio_util::task::TaskTracker;

use super::args::CommonArgs;
use super::book::{EventBook, PresenceBook};
use super::churn::ChurnOutcome;
use super::host::{self, ProcSample};
use super::node_fanout;
use super::publish::PublishOutcome;
use super::report::{
    self, Connections, Deliveries, Generator, Limits, Machine, Presence, Report, Server, VerdictInputs,
};
use super::swarm::{self, Books, RampOutcome, Shared, SocketPlan};
use super::target::Target;
use super::BenchError;

/// Longest wait for late deliveries after publishing or churn stops.
const SETTLE: Duration = Duration::from_secs(3);
/// Time kept before `--duration` for teardown.
const TEARDOWN_RESERVE: Duration = Duration::from_secs(1);
/// Time kept before `--duration` for settling and teardown.
const RESERVE: Duration = Duration::from_secs(SETTLE.as_secs() + TEARDOWN_RESERVE.as_secs());
/// Bound on the teardown of every socket task.
const TEARDOWN: Duration = Duration::from_secs(3);
/// Files the generator needs besides its sockets (HTTP pool, runtime, stdio).
const FILE_HEADROOM: u64 = 100;
/// A gap without frames that counts as quiet after the ramp.
const QUIET: Duration = Duration::from_millis(250);
/// Longest wait for quiet after the ramp.
const QUIET_MAX: Duration = Duration::from_secs(5);
/// How often the progress line is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Samples taken at the edges of the steady phase.
#[derive(Debug, Clone, Copy)]
struct Window {
    generator: ProcSample,
    server: Option<ProcSample>,
    machine: Option<host::MachineSample>,
    frames_in: u64,
}

/// A scenario's run in progress.
#[derive(Debug)]
pub(crate) struct Run {
    /// The scenario's shared state.
    pub shared: Arc<Shared>,
    /// The server under test.
    pub target: Arc<Target>,
    /// Every socket task.
    pub tasks: TaskTracker,
    /// The hard end of the run (`--duration`).
    pub deadline: Instant,
    common: CommonArgs,
    scenario: &'static str,
    parameters: serde_json::Value,
    requested: usize,
    limits: Limits,
    warnings: Vec<String>,
    generator_start: ProcSample,
    own_proc: host::ProcReader,
    server_proc: Option<host::ProcReader>,
    machine_proc: Option<host::MachineReader>,
    server_before: Option<ProcSample>,
    ramp: Option<RampOutcome>,
    steady_start: Option<Window>,
    steady_end: Option<Window>,
    progress: Option<JoinHandle<()>>,
    unsampled_servers: bool,
    /// The server's fan-out histogram when measuring began (with `--stats-token`).
    fanout_before: Option<node_fanout::FanoutHistogram>,
}

impl Run {
    /// Raises the file limit, resolves the target, samples the server's baseline.
    ///
    /// # Errors
    /// A bad `--url`, or a `--server-pid` that is not a readable process.
    pub(crate) async fn start(
        common: &CommonArgs,
        scenario: &'static str,
        parameters: serde_json::Value,
        sockets: usize,
        events: Option<EventBook>,
        presence: Option<PresenceBook>,
    ) -> Result<Run, BenchError> {
        Run::start_with(common, scenario, parameters, sockets, Books { events, presence, drain: None }).await
    }

    /// [`Run::start`] with any set of books.
    ///
    /// # Errors
    /// See [`Run::start`].
    pub(crate) async fn start_with(
        common: &CommonArgs,
        scenario: &'static str,
        parameters: serde_json::Value,
        sockets: usize,
        books: Books,
    ) -> Result<Run, BenchError> {
        let started = Instant::now();
        let open_files = host::raise_file_limit();
        let ports = host::ephemeral_ports();
        let target = Target::resolve(common, u32::try_from(sockets).unwrap_or(u32::MAX), ports).await?;
        let mut warnings = Vec::new();
        if let Some(e) = &open_files.raise_error {
            warnings.push(format!("could not raise the open-file limit to {}: {e}", open_files.hard));
        }
        if sockets as u64 + FILE_HEADROOM > open_files.soft {
            warnings.push(format!(
                "{sockets} sockets need about {} open files; the limit is {}: expect EMFILE failures \
                 (size runs to ≤ {} sockets here)",
                sockets as u64 + FILE_HEADROOM,
                open_files.soft,
                open_files.soft.saturating_sub(FILE_HEADROOM)
            ));
        }
        if let (true, Some(p)) = (target.sources.is_empty(), ports) {
            if sockets as u64 > u64::from(p) {
                warnings.push(format!(
                    "{sockets} sockets exceed the {p} ephemeral ports of one source address; \
                     expect EADDRNOTAVAIL (loopback targets rotate 127.0.0.x: see --source-addrs)"
                ));
            }
        }
        if !target.is_loopback() {
            warnings.push(format!("target {} is not loopback: network latency is in every figure", target.addr));
        }
        // Opened now, while file descriptors are free; re-read at every sample.
        let server_proc = match common.server_pid {
            Some(pid) => {
                Some(host::ProcReader::open(Some(pid)).map_err(|source| BenchError::ServerPid { pid, source })?)
            }
            None => None,
        };
        let server_before = match (&server_proc, common.server_pid) {
            (Some(p), Some(pid)) => Some(p.sample().map_err(|source| BenchError::ServerPid { pid, source })?),
            _ => None,
        };
        let own_proc = host::ProcReader::open(None).map_err(BenchError::OwnProc)?;
        let shared = Arc::new(Shared::new(books));
        let progress = std::io::stderr().is_terminal().then(|| spawn_progress(shared.clone(), sockets));
        Ok(Run {
            limits: Limits {
                open_files,
                ephemeral_ports: ports,
                source_addresses: target.sources.iter().map(ToString::to_string).collect(),
                hit: Vec::new(),
            },
            target: Arc::new(target),
            tasks: TaskTracker::new(),
            deadline: started + common.duration,
            common: common.clone(),
            scenario,
            parameters,
            requested: sockets,
            warnings,
            generator_start: own_proc.sample().map_err(BenchError::OwnProc)?,
            own_proc,
            server_proc,
            machine_proc: host::MachineReader::open().ok(),
            server_before,
            ramp: None,
            steady_start: None,
            steady_end: None,
            progress,
            shared,
            unsampled_servers: false,
            fanout_before: None,
        })
    }

    /// Opens the sockets at `--rate`.
    pub(crate) async fn ramp(&mut self, plan: impl FnMut(usize) -> SocketPlan) -> RampOutcome {
        // Leave room for the steady phase (at most a quarter of the run) and settling.
        let steady = self.common.hold.min(self.common.duration / 4);
        let until = self.deadline.checked_sub(RESERVE + steady).unwrap_or(self.deadline);
        let outcome =
            swarm::ramp(&self.shared, &self.target, &self.tasks, self.requested, self.common.rate, until, plan).await;
        self.note_ramp(outcome);
        outcome
    }

    /// Opens the sockets at `--rate` with a scenario's own socket task (see
    /// [`swarm::ramp_with`]), leaving `after` before `--duration` for what follows.
    pub(crate) async fn ramp_with<F>(
        &mut self,
        after: Duration,
        connect_timeout: Duration,
        socket: impl FnMut(usize) -> F,
    ) -> RampOutcome
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let until = self.deadline.checked_sub(RESERVE + after).unwrap_or(self.deadline);
        let outcome = swarm::ramp_with(
            &self.shared,
            &self.tasks,
            self.requested,
            self.common.rate,
            until,
            connect_timeout,
            socket,
        )
        .await;
        self.note_ramp(outcome);
        outcome
    }

    fn note_ramp(&mut self, outcome: RampOutcome) {
        if outcome.started < self.requested {
            self.warnings
                .push(format!("--duration ended the ramp after {} of {} sockets", outcome.started, self.requested));
        } else if !outcome.settled {
            self.warnings.push("some sockets were still connecting when the ramp ended".into());
        }
        self.ramp = Some(outcome);
    }

    /// Says that the servers under test run beside the generator without being sampled
    /// (a drain's nodes and redis), so the verdict does not call their CPU noise.
    pub(crate) fn servers_unsampled(&mut self) {
        self.unsampled_servers = true;
    }

    /// Adds a line to the report's warnings.
    pub(crate) fn warn(&mut self, warning: String) {
        self.warnings.push(warning);
    }

    /// Whether the ramp left no socket ready (the steady phase would measure nothing).
    pub(crate) fn nobody_ready(&self) -> bool {
        self.shared.ready.load(Ordering::Relaxed) == 0
    }

    fn window(&self) -> Window {
        Window {
            generator: self.own_proc.sample().unwrap_or(self.generator_start),
            server: self.server_proc.as_ref().and_then(|p| p.sample().ok()),
            machine: self.machine_proc.as_ref().and_then(|m| m.sample().ok()),
            frames_in: self.shared.frames_in.load(Ordering::Relaxed),
        }
    }

    /// Starts the measured steady phase; returns when it should stop (after `--hold`, or
    /// earlier when `--duration` requires).
    pub(crate) async fn begin_steady(&mut self, phase: &'static str) -> Instant {
        self.begin_measuring(phase).await;
        let wanted = Instant::now() + self.common.hold;
        let latest = self.deadline.checked_sub(RESERVE).unwrap_or(self.deadline);
        if wanted > latest {
            self.warnings.push(format!(
                "--duration cut the steady phase to {:.1} s of the {:.1} s asked",
                latest.saturating_duration_since(Instant::now()).as_secs_f64(),
                self.common.hold.as_secs_f64()
            ));
        }
        wanted.min(latest)
    }

    /// Starts the measured phase without a length of its own (the scenario ends it with
    /// [`Run::end_steady`]): waits for quiet after the ramp, takes the opening samples.
    pub(crate) async fn begin_measuring(&mut self, phase: &'static str) {
        self.quiesce().await;
        if let Some(token) = &self.common.stats_token {
            self.fanout_before = node_fanout::read_histogram(&self.target, token).await;
            if self.fanout_before.is_none() {
                self.warnings.push("could not read the server's fan-out histogram from /metrics".into());
            }
        }
        self.shared.set_phase(phase);
        self.steady_start = Some(self.window());
        self.shared.measuring.store(true, Ordering::Relaxed);
    }

    /// Waits until no frame has arrived for a moment (bounded), so that the ramp's
    /// leftovers (presence joins reaching earlier members) stay out of the steady phase.
    async fn quiesce(&self) {
        self.shared.set_phase("quiesce");
        let until = (Instant::now() + QUIET_MAX).min(self.deadline.checked_sub(RESERVE).unwrap_or(self.deadline));
        let mut last = self.shared.frames_in.load(Ordering::Relaxed);
        while Instant::now() < until {
            sleep(QUIET).await;
            let now = self.shared.frames_in.load(Ordering::Relaxed);
            if now == last {
                return;
            }
            last = now;
        }
    }

    /// Waits (bounded) for the deliveries and member frames still owed.
    pub(crate) async fn settle(&self) {
        self.shared.set_phase("settling");
        let until = (Instant::now() + SETTLE).min(self.deadline.checked_sub(TEARDOWN_RESERVE).unwrap_or(self.deadline));
        while Instant::now() < until {
            let events_done = self.shared.events.as_ref().is_none_or(|b| b.outstanding() == 0 && b.in_flight() == 0);
            let presence_done = self
                .shared
                .presence
                .as_ref()
                .is_none_or(|p| p.frames.load(Ordering::Relaxed) >= p.expected.load(Ordering::Relaxed));
            if events_done && presence_done {
                return;
            }
            sleep(Duration::from_millis(20)).await;
        }
    }

    /// Ends the steady phase: takes the closing samples while every socket is still open.
    pub(crate) fn end_steady(&mut self) {
        self.shared.measuring.store(false, Ordering::Relaxed);
        self.steady_end = Some(self.window());
    }

    /// Closes every socket and assembles the report.
    pub(crate) async fn finish(
        mut self,
        publish: Option<PublishOutcome>,
        churn: Option<ChurnOutcome>,
    ) -> Result<Report, BenchError> {
        if self.steady_end.is_none() {
            self.end_steady();
        }
        // The server's own figures, while every socket is still open.
        let server_fanout = match (&self.common.stats_token, &self.fanout_before) {
            (Some(token), Some(before)) => {
                let after = node_fanout::read_histogram(&self.target, token).await;
                let stats = node_fanout::read_stats(&self.target, token).await;
                after.map(|a| node_fanout::ServerFanout::new(before, &a, stats.as_ref()))
            }
            _ => None,
        };
        self.shared.set_phase("closing");
        self.shared.cancel.cancel();
        self.tasks.close();
        if timeout(TEARDOWN, self.tasks.wait()).await.is_err() {
            self.warnings.push("some socket tasks did not stop within 3 s".into());
        }
        if let Some(p) = self.progress.take() {
            p.abort();
            eprint!("\r\x1b[K");
        }
        let generator_end = self.own_proc.sample().map_err(BenchError::OwnProc)?;
        let mut report = self.assemble(publish, churn, generator_end);
        report.server_fanout = server_fanout;
        Ok(report)
    }

    fn assemble(mut self, publish: Option<PublishOutcome>, churn: Option<ChurnOutcome>, gen_end: ProcSample) -> Report {
        let s = &self.shared;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let ramp = self.ramp.unwrap_or(RampOutcome {
            started: 0,
            spawning: Duration::ZERO,
            elapsed: Duration::ZERO,
            settled: true,
        });
        let end = self.steady_end.unwrap_or_else(|| self.window());
        let start = self.steady_start.unwrap_or(end);
        let secs = end.generator.at.saturating_duration_since(start.generator.at).as_secs_f64();
        let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let frames = end.frames_in - start.frames_in;
        let failures = s.failures.snapshot();
        for (why, n) in &failures {
            if why.contains("EMFILE") || why.contains("ENFILE") || why.contains("EADDR") {
                self.limits.hit.push(format!("{why}: {n} sockets"));
            }
        }
        let ready = load(&s.ready);
        let open_sockets = ready.saturating_sub(load(&s.dropped));
        let server = match (self.common.server_pid, self.server_before, start.server, end.server) {
            (Some(pid), Some(before), Some(a), Some(b)) => {
                let cpu = host::cores_used(&a, &b);
                let cpu_secs = b.cpu.saturating_sub(a.cpu).as_secs_f64();
                Some(Server {
                    pid,
                    cpus_allowed: host::cpus_allowed_list(Some(pid)).as_deref().and_then(host::count_cpus),
                    rss_before_kib: before.rss_kib,
                    rss_after_kib: b.rss_kib,
                    rss_per_socket_kib: (open_sockets > 0)
                        .then(|| (b.rss_kib as f64 - before.rss_kib as f64) / open_sockets as f64),
                    cpu_cores: cpu,
                    frames_per_cpu_second: (cpu_secs > 0.0 && frames > 0).then(|| frames as f64 / cpu_secs),
                })
            }
            (Some(pid), ..) => {
                self.warnings.push(format!("server pid {pid} could not be read at the end; is it still running?"));
                None
            }
            _ => None,
        };
        let gen_cores = host::cores_used(&start.generator, &end.generator);
        let gen_allowed = std::thread::available_parallelism().map_or(1, |n| n.get());
        let gen_cpu_secs = end.generator.cpu.saturating_sub(start.generator.cpu).as_secs_f64();
        let us_per_frame = (frames > 0 && gen_cpu_secs > 0.0).then(|| gen_cpu_secs * 1e6 / frames as f64);
        let ramp_secs = ramp.elapsed.as_secs_f64();
        let connections = Connections {
            requested: self.requested as u64,
            started: ramp.started as u64,
            connected: load(&s.connected),
            ready,
            failed: load(&s.failed),
            dropped: load(&s.dropped),
            ramp_seconds: ramp_secs,
            ramp_rate_target: self.common.rate,
            ramp_rate_achieved: match ramp.spawning.as_secs_f64() {
                // n sockets span n - 1 intervals of the schedule.
                secs if secs > 0.0 && ramp.started > 1 => (ramp.started - 1) as f64 / secs,
                _ => self.common.rate,
            },
            connect_latency: s.connect_latency.percentiles(),
            subscribe_latency: s.subscribe_latency.percentiles(),
            failures,
            drops: s.drops.snapshot(),
            server_errors: s.server_errors.snapshot(),
            pings_sent: load(&s.pings_sent),
            pongs_sent: load(&s.pongs_sent),
            pongs_missing: load(&s.pongs_missing),
        };
        let deliveries = s.events.as_ref().map(|b| {
            let summary = b.summary();
            let publishing = publish.as_ref().map_or(secs, |p| p.seconds);
            let largest = b.subscribers.iter().map(|n| n.load(Ordering::Relaxed)).max().unwrap_or(0);
            Deliveries {
                per_second: if publishing > 0.0 { summary.received as f64 / publishing } else { 0.0 },
                foreign: load(&b.foreign),
                generator_read_floor_ms: us_per_frame.map(|us| f64::from(largest) * us / 1_000.0 / gen_allowed as f64),
                summary,
            }
        });
        if deliveries.as_ref().is_some_and(|d| d.summary.lost > 0) {
            self.warnings.push("deliveries were lost: see 'dropped' for sockets the server closed".into());
        }
        let presence = s.presence.as_ref().map(|p| Presence {
            members: churn.map_or(0, |c| c.members_at_start as u64),
            joins: load(&p.joins),
            leaves: load(&p.leaves),
            frames_expected: load(&p.expected),
            frames_received: load(&p.frames),
            frames_per_second: per_sec(load(&p.frames)),
            latency: p.latency.percentiles(),
        });
        if let Some(c) = churn.filter(|c| c.dropped_commands > 0) {
            self.warnings.push(format!("{} churn commands found their socket gone", c.dropped_commands));
        }
        let machine = match (start.machine, end.machine) {
            (Some(a), Some(b)) => {
                let busy = host::machine_cores_used(&a, &b);
                let own = gen_cores + server.as_ref().map_or(0.0, |s| s.cpu_cores);
                Some(Machine { cores: b.cores, busy_cores: busy, other_processes_cores: (busy - own).max(0.0) })
            }
            _ => None,
        };
        let cpu_lists = self
            .common
            .server_pid
            .and_then(|pid| Some((host::cpus_allowed_list(None)?, host::cpus_allowed_list(Some(pid))?)));
        let verdict = report::verdict(&VerdictInputs {
            generator_cores: gen_cores,
            generator_allowed: gen_allowed,
            server: server.as_ref().map(|s| (s.cpu_cores, s.cpus_allowed)),
            cpu_lists,
            publish: publish.as_ref(),
            machine: machine.as_ref(),
            ramp: (self.common.rate, connections.ramp_rate_achieved),
            time_to_last: deliveries
                .as_ref()
                .and_then(|d| Some((d.summary.time_to_last.p50_ms, d.generator_read_floor_ms?))),
            unsampled_servers: self.unsampled_servers,
        });
        Report {
            scenario: self.scenario,
            target: self.common.url.clone(),
            parameters: self.parameters,
            steady_seconds: secs,
            limits: self.limits,
            connections,
            publish,
            deliveries,
            presence,
            drain: None,
            server_fanout: None,
            server,
            generator: Generator {
                cores_available: gen_allowed,
                cpu_cores: gen_cores,
                cpu_seconds_total: gen_end.cpu.saturating_sub(self.generator_start.cpu).as_secs_f64(),
                rss_kib: end.generator.rss_kib,
                frames_per_second: per_sec(frames),
                cpu_us_per_frame: us_per_frame,
            },
            machine,
            verdict,
            warnings: self.warnings,
        }
    }
}

/// Redraws one status line on stderr until aborted (only when stderr is a terminal).
fn spawn_progress(shared: Arc<Shared>, total: usize) -> JoinHandle<()> {
    tokio::spawn(async move {
        let start = Instant::now();
        loop {
            sleep(PROGRESS_EVERY).await;
            let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            let mut line = format!(
                "{:<8}{:>6.1}s  ready {}/{total}  failed {}  dropped {}",
                *shared.phase.lock(),
                start.elapsed().as_secs_f64(),
                load(&shared.ready),
                load(&shared.failed),
                load(&shared.dropped),
            );
            if let Some(b) = &shared.events {
                line.push_str(&format!("  delivered {}", load(&b.delivered)));
            }
            if let Some(p) = &shared.presence {
                line.push_str(&format!("  presence {}", load(&p.frames)));
            }
            if let Some(d) = &shared.drain {
                line.push_str(&format!("  on A {}  away {}  back {}", load(&d.on_home), load(&d.away), load(&d.back)));
            }
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K{line}");
            let _ = err.flush();
        }
    })
}
