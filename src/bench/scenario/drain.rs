//! `rtc bench drain`: the measurement of issue 4. Sockets on node A, each joined to
//! signed private channels; node A is drained (admin API or SIGTERM) or killed
//! (SIGKILL); the sockets reconnect to the survivors as pusher-js would (see
//! [`crate::bench::reconnect`]). The report shows the reconnect rate each survivor sees
//! (the storm, or its absence), the auth-request rate that follows, how the closes
//! spread, and whether every socket came back.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{sleep, Instant};

use crate::bench::args::{ChannelKind, CommonArgs, DrainArgs, DrainWith};
use crate::bench::host;
use crate::bench::reconnect::{self, Survivors};
use crate::bench::report::{Arrivals, Closes, Drain, Lost, Report, SurvivorArrivals};
use crate::bench::runner::Run;
use crate::bench::swarm::{channel_name, Books};
use crate::bench::target::Target;
use crate::bench::timeline::{self, DrainBook, BUCKET};
use crate::bench::BenchError;

/// Private channels the sockets' subscriptions are spread over.
const CHANNEL_POOL: usize = 1000;
/// How often the end of the reconnects is checked.
const POLL: Duration = Duration::from_millis(20);
/// Watch for sockets closed again after every socket is back.
const AFTER_BACK: Duration = Duration::from_millis(500);
/// Longest wait for node A's process to go after every socket is back.
const EXIT_WAIT: Duration = Duration::from_secs(3);
/// How long node A's stats are read for its drain settings after a signal.
const SETTINGS_WAIT: Duration = Duration::from_secs(2);
/// Bound on the trigger request.
const TRIGGER_TIMEOUT: Duration = Duration::from_secs(5);
/// `rtc serve`'s defaults: --pre-drain-delay 5, --drain-window 15.
const SERVER_PRE_DELAY: Duration = Duration::from_secs(5);
const SERVER_WINDOW: Duration = Duration::from_secs(15);
/// Time kept after the expected drain for the last reconnects (pusher-js waits 1 s
/// after a forced close).
const TAIL: Duration = Duration::from_secs(5);
/// Time kept before `--duration` for teardown.
const TEARDOWN: Duration = Duration::from_secs(1);

/// Ramps the sockets on node A, triggers the drain, follows the reconnects until every
/// socket is back (or `--duration`), reports.
///
/// # Errors
/// A flag combination that cannot work, a non-loopback node, the errors of
/// [`Run::start`], or a trigger node A refused.
pub(crate) async fn run(common: &CommonArgs, args: &DrainArgs) -> Result<Report, BenchError> {
    check_flags(common, args)?;
    // Opened now, while file descriptors are free: it tells when node A's process is gone.
    let node_a = match common.server_pid {
        Some(pid) => Some(host::ProcReader::open(Some(pid)).map_err(|source| BenchError::ServerPid { pid, source })?),
        None => None,
    };
    let sockets = args.sockets as usize;
    let parameters = serde_json::json!({
        "sockets": sockets,
        "survivors": args.survivors,
        "drain_with": args.drain_with,
        "window_s": args.window.map(|d| d.as_secs_f64()),
        "pre_delay_s": args.pre_delay.map(|d| d.as_secs_f64()),
        "channels_per_socket": args.channels_per_socket,
        "rate": common.rate,
    });
    // Node A goes away during the run: it is not "the server" whose RSS and CPU the
    // runner samples at the end. --server-pid only names the process to signal.
    let mut own = common.clone();
    own.server_pid = None;
    let book = DrainBook::new(args.survivors.len(), common.duration + Duration::from_secs(1));
    let books = Books { drain: Some(book), ..Books::default() };
    let mut run = Run::start_with(&own, "drain", parameters, sockets, books).await?;
    run.servers_unsampled();
    let survivors = Arc::new(resolve_survivors(common, args, &run.target).await?);
    let expected = expected_drain(args);
    let per_socket = args.channels_per_socket as usize;
    let (shared, home) = (run.shared.clone(), run.target.clone());
    let socket_survivors = survivors.clone();
    // The ramp keeps time for the drain, but never more than half the run (a short
    // --duration is then reported, not a ramp that never starts).
    run.ramp_with((expected + TAIL).min(common.duration / 2), common.connect_timeout, move |i| {
        let channels =
            (0..per_socket).map(|j| channel_name(ChannelKind::Private, "drain", (i * per_socket + j) % CHANNEL_POOL));
        reconnect::run_socket(shared.clone(), home.clone(), socket_survivors.clone(), i, channels.collect())
    })
    .await;
    if run.nobody_ready() {
        return run.finish(None, None).await;
    }
    run.begin_measuring("drain").await;
    let shared = run.shared.clone();
    let Some(book) = shared.drain.as_ref() else {
        return Err(BenchError::NoDrainBook);
    };
    let end = run.deadline.checked_sub(TEARDOWN).unwrap_or(run.deadline);
    let left = end.saturating_duration_since(Instant::now());
    if left < expected + TAIL {
        run.warn(format!(
            "--duration leaves {:.1} s after the ramp for a drain expected to take about {:.1} s",
            left.as_secs_f64(),
            (expected + TAIL).as_secs_f64()
        ));
    }
    let sockets_on_a = book.on_home.load(Ordering::Relaxed);
    let triggered = Instant::now();
    book.mark_trigger(triggered);
    let answer = match trigger(common, args, &run.target).await {
        Ok(a) => a,
        Err(e) => {
            // Close the sockets and the progress line before saying why.
            let _ = run.finish(None, None).await;
            return Err(e);
        }
    };
    let exit = node_a.map(|node| tokio::spawn(watch_exit(node, triggered)));
    // After a signal, the node's own drain settings come from its stats (with a token).
    let settings = match (&answer, args.drain_with, args.admin_token.as_deref()) {
        (None, DrainWith::Signal, Some(token)) => {
            Some(tokio::spawn(drain_settings(run.target.clone(), token.trim().to_string())))
        }
        _ => None,
    };
    // Until every socket is back (or gave up), then a moment for late re-closes and for
    // node A's exit; bounded by --duration.
    while !book.all_settled() && Instant::now() < end {
        sleep(POLL).await;
    }
    if book.all_settled() {
        sleep(AFTER_BACK.min(end.saturating_duration_since(Instant::now()))).await;
        let exit_by = (Instant::now() + EXIT_WAIT).min(end);
        if args.drain_with != DrainWith::Kill {
            while exit.as_ref().is_some_and(|h| !h.is_finished()) && Instant::now() < exit_by {
                sleep(POLL).await;
            }
        }
    }
    run.end_steady();
    let node_a_exit_s = match exit {
        Some(h) if h.is_finished() => h.await.ok(),
        Some(h) => {
            h.abort();
            None
        }
        None => None,
    };
    let answer = match settings {
        Some(h) if h.is_finished() => h.await.ok().flatten(),
        Some(h) => {
            h.abort();
            None
        }
        None => answer,
    };
    let drain = figures(book, args, &survivors, answer, sockets_on_a, node_a_exit_s);
    let (notes, warnings) = observations(&drain);
    let mut report = run.finish(None, None).await?;
    report.verdict.notes.extend(notes);
    report.warnings.extend(warnings);
    report.drain = Some(drain);
    Ok(report)
}

fn usage(why: impl Into<String>) -> BenchError {
    BenchError::Usage(why.into())
}

fn check_flags(common: &CommonArgs, args: &DrainArgs) -> Result<(), BenchError> {
    match args.drain_with {
        DrainWith::Admin => {
            if args.admin_token.as_deref().is_none_or(|t| t.trim().is_empty()) {
                return Err(usage("--drain-with admin needs node A's admin token: --admin-token or RTC_ADMIN_TOKEN"));
            }
        }
        DrainWith::Signal | DrainWith::Kill => {
            if common.server_pid.is_none() {
                return Err(usage("--drain-with signal|kill needs node A's process id: --server-pid PID"));
            }
            if args.window.is_some() || args.pre_delay.is_some() {
                return Err(usage(
                    "--window and --pre-delay go with --drain-with admin; for a signal, start node A with \
                     --drain-window and --pre-drain-delay",
                ));
            }
        }
    }
    if common.server_pid == Some(std::process::id()) {
        return Err(usage("--server-pid is the generator itself"));
    }
    Ok(())
}

/// Resolves the survivors; every node must be on loopback and none may be node A.
async fn resolve_survivors(common: &CommonArgs, args: &DrainArgs, home: &Target) -> Result<Survivors, BenchError> {
    if !home.is_loopback() {
        return Err(usage(format!("'--url' = '{}': rtc bench drain runs against loopback nodes only", common.url)));
    }
    let ports = host::ephemeral_ports();
    let mut targets = Vec::new();
    for url in &args.survivors {
        let mut c = common.clone();
        c.url = url.clone();
        let t = Target::resolve(&c, args.sockets, ports).await?;
        if !t.is_loopback() {
            return Err(usage(format!("'--survivor' = '{url}': rtc bench drain runs against loopback nodes only")));
        }
        if t.addr == home.addr {
            return Err(usage(format!("'--survivor' = '{url}' is node A (--url) itself")));
        }
        targets.push(Arc::new(t));
    }
    Ok(Survivors::new(targets))
}

/// How long the drain should take: pre-delay + window.
fn expected_drain(args: &DrainArgs) -> Duration {
    match args.drain_with {
        DrainWith::Admin => args.pre_delay.unwrap_or(SERVER_PRE_DELAY) + args.window.unwrap_or(SERVER_WINDOW),
        DrainWith::Signal => SERVER_PRE_DELAY + SERVER_WINDOW,
        DrainWith::Kill => Duration::ZERO,
    }
}

/// Makes node A shed its sockets; returns its answer to the admin request.
async fn trigger(
    common: &CommonArgs,
    args: &DrainArgs,
    home: &Target,
) -> Result<Option<serde_json::Value>, BenchError> {
    let trigger_error = |why: String| BenchError::Trigger(why);
    let pid = common.server_pid.unwrap_or(0);
    let signal = match args.drain_with {
        DrainWith::Signal => "TERM",
        DrainWith::Kill => "KILL",
        DrainWith::Admin => {
            let token = args.admin_token.as_deref().unwrap_or_default().trim();
            let mut body = serde_json::Map::new();
            if let Some(w) = args.window {
                body.insert("window_secs".into(), w.as_secs_f64().into());
            }
            if let Some(p) = args.pre_delay {
                body.insert("pre_delay_secs".into(), p.as_secs_f64().into());
            }
            let client = reqwest::Client::builder().timeout(TRIGGER_TIMEOUT).build().map_err(BenchError::HttpClient)?;
            let url = format!("{}{}/admin/drain", home.http_base, home.prefix);
            let mut request = client.post(&url).bearer_auth(token);
            if !body.is_empty() {
                request = request
                    .header("content-type", "application/json")
                    .body(serde_json::Value::Object(body).to_string());
            }
            let response =
                request.send().await.map_err(|e| trigger_error(format!("POST {url}: {}", without_url(&e))))?;
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            return match status.as_u16() {
                200..=299 => Ok(serde_json::from_str(&text).ok()),
                401 => Err(trigger_error(
                    "node A refused the admin token (HTTP 401): check --admin-token / RTC_ADMIN_TOKEN".into(),
                )),
                409 => Err(trigger_error("node A is already draining (HTTP 409)".into())),
                s => Err(trigger_error(format!("POST {url}: HTTP {s}: {}", text.trim()))),
            };
        }
    };
    let out = tokio::process::Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .output()
        .await
        .map_err(|e| trigger_error(format!("cannot run kill: {e}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(trigger_error(format!("kill -s {signal} {pid}: {}", stderr.trim())));
    }
    Ok(None)
}

fn without_url(e: &reqwest::Error) -> String {
    if e.is_connect() {
        "cannot connect to node A".into()
    } else if e.is_timeout() {
        "node A did not answer in time".into()
    } else {
        e.to_string()
    }
}

/// Node A's drain section of `/admin/stats`, read within a moment of the signal.
async fn drain_settings(home: Arc<Target>, token: String) -> Option<serde_json::Value> {
    let client = reqwest::Client::builder().timeout(TRIGGER_TIMEOUT).build().ok()?;
    let url = format!("{}{}/admin/stats", home.http_base, home.prefix);
    let until = Instant::now() + SETTINGS_WAIT;
    while Instant::now() < until {
        let response = client.get(&url).bearer_auth(&token).send().await.ok()?;
        let stats: serde_json::Value = response.json().await.ok()?;
        if stats["drain"].is_object() {
            return Some(stats["drain"].clone());
        }
        sleep(POLL).await;
    }
    None
}

/// Seconds from `from` until node A's process is gone (polled every 20 ms).
async fn watch_exit(node: host::ProcReader, from: Instant) -> f64 {
    while node.alive() {
        sleep(POLL).await;
    }
    from.elapsed().as_secs_f64()
}

fn arrivals(curve: &[u32]) -> Arrivals {
    Arrivals { total: curve.iter().map(|&n| u64::from(n)).sum(), peak: timeline::peak(curve) }
}

/// The drain's figures from the book.
fn figures(
    book: &DrainBook,
    args: &DrainArgs,
    survivors: &Survivors,
    node_answer: Option<serde_json::Value>,
    sockets_on_a: u64,
    node_a_exit_s: Option<f64>,
) -> Drain {
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let curves = book.curves();
    let span = book.close_span();
    let (ready, back) = (load(&book.home_ready), load(&book.back));
    let window = node_answer.as_ref().and_then(|a| a["window_secs"].as_f64()).or(args.window.map(|w| w.as_secs_f64()));
    Drain {
        drain_with: args.drain_with,
        sockets_on_a,
        closes: Closes {
            total: curves.closes.iter().map(|&n| u64::from(n)).sum(),
            hinted: load(&book.hinted),
            forced: load(&book.forced),
            before_trigger: load(&book.before_trigger),
            first_s: span.map(|s| s.0),
            last_s: span.map(|s| s.1),
            peak: timeline::peak(&curves.closes),
            codes: book.close_codes.snapshot(),
        },
        survivors: survivors
            .targets
            .iter()
            .zip(&curves.arrivals)
            .map(|(t, c)| SurvivorArrivals { url: format!("ws://{}{}", t.addr, t.prefix), arrivals: arrivals(c) })
            .collect(),
        cluster: arrivals(&timeline::sum(&curves.arrivals)),
        auth_requests: arrivals(&curves.auth_requests),
        paced_expectation_per_survivor: window
            .filter(|w| *w > 0.0 && args.drain_with != DrainWith::Kill)
            .map(|w| sockets_on_a as f64 / w / survivors.targets.len().max(1) as f64),
        back,
        all_back_s: (ready > 0 && back >= ready).then(|| book.last_back_s()).flatten(),
        last_back_s: book.last_back_s(),
        away_time: book.away_time.percentiles(),
        lost: Lost {
            total: ready.saturating_sub(back),
            gave_up: load(&book.gave_up),
            reconnecting: load(&book.away),
            still_on_a: load(&book.on_home),
        },
        reclosed: book.reclosed.snapshot(),
        failed_attempts: book.failed_attempts.snapshot(),
        node_a_exit_s,
        node_answer,
        bucket_ms: BUCKET.as_millis() as u64,
        timeline: curves,
    }
}

/// Verdict notes and warnings about the drain.
fn observations(d: &Drain) -> (Vec<String>, Vec<String>) {
    let (mut notes, mut warnings) = (Vec::new(), Vec::new());
    let failed: u64 = d.failed_attempts.values().sum();
    let cluster = timeline::sum(&d.timeline.arrivals);
    let first = cluster.iter().position(|&n| n > 0);
    let last = cluster.iter().rposition(|&n| n > 0);
    if let (Some(a), Some(b), Some(f), Some(l)) = (first, last, d.closes.first_s, d.closes.last_s) {
        let arrival_spread = (b + 1 - a) as f64 * BUCKET.as_secs_f64();
        let close_spread = l - f;
        let spread_out = close_spread < 0.5 && arrival_spread > 2.0 * close_spread.max(BUCKET.as_secs_f64());
        if spread_out && failed > 0 {
            notes.push(format!(
                "the closes took {close_spread:.2} s and the arrivals spread over {arrival_spread:.1} s because \
                 {failed} reconnect attempts were refused (see 'failed try'; HTTP 503 is the survivors' admission \
                 control): pusher-js retries a failed open once at once, then on its 15 s attempt timer"
            ));
        } else if spread_out {
            notes.push(format!(
                "the closes took {close_spread:.2} s but the arrivals spread over {arrival_spread:.1} s: the \
                 survivors' and the generator's handshake rate on this machine capped the peak, so it is a lower \
                 bound of the storm (a fleet of real clients arrives as fast as the closes)"
            ));
        }
    }
    if d.drain_with == DrainWith::Kill {
        notes.push("SIGKILL sends no reconnect hint: pusher-js waits 1 s after the reset, then every socket comes back together".into());
    }
    if d.lost.total > 0 {
        warnings.push(format!(
            "{} sockets were not back at the end ({} gave up, {} still reconnecting, {} never closed by node A)",
            d.lost.total, d.lost.gave_up, d.lost.reconnecting, d.lost.still_on_a
        ));
    }
    if failed > 0 {
        warnings.push(format!("{failed} reconnect attempts failed: see 'failed try'"));
    }
    let reclosed: u64 = d.reclosed.values().sum();
    if reclosed > 0 {
        warnings.push(format!("survivors closed {reclosed} sockets that had come back: a cascade"));
    }
    (notes, warnings)
}
