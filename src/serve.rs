//! Start-up of `rtc serve`, and its composition root: resolve the config (exit 2 on a
//! bad one, before anything listens), raise the open-file limit, bind, pick the cluster
//! engine (Redis when the config has a cluster, none otherwise), build the node,
//! assemble its routes, print the banner, serve until a signal.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{any, get};
use axum::Router;
use tokio::net::TcpListener;

use crate::cli::ServeArgs;
use crate::cluster::Cluster;
use crate::config::{self, ConfigErrors, Engine, FileConfig, ServeConfig};
use crate::metrics::Metrics;
use crate::nats::Nats;
use crate::port::{ClusterError, ClusterPort};
use crate::server::{self, drain, health, ws, Node};

/// Why `rtc serve` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration is invalid (exit code 2).
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    /// The node had to stop (e.g. its id is taken by another live node).
    #[error("{0}")]
    Fatal(ClusterError),
}

/// The routes of a node (WebSocket, HTTP API, health, metrics, admin). The route prefix
/// (`--path`) applies to the WebSocket and the HTTP API only: health (`/up`, `/ready`,
/// `/live`), `/metrics` and `/admin/*` stay at the root, where probes and the console
/// look for them.
pub fn routes(node: Arc<Node>) -> Router {
    let pusher = Router::new()
        .route("/app/{key}", any(ws::upgrade))
        .route("/app/", any(ws::missing_key))
        .merge(crate::http_api::routes(&node));
    let prefix = node.config.path.clone();
    let pusher = if prefix.is_empty() { pusher } else { Router::new().nest(&prefix, pusher) };
    let routes = pusher
        .route("/up", get(health::up))
        .route("/ready", get(health::ready))
        .route("/live", get(health::live))
        .merge(crate::admin::routes());
    routes
        .fallback(crate::http_api::not_found)
        .layer(axum::extract::DefaultBodyLimit::max(node.config.max_request_size))
        .with_state(node)
}

/// Builds the node of `config` with its cluster engine: the one its `--bus` URL names
/// (NATS for `nats://`, one Redis otherwise) when the config has a cluster, none
/// (standalone) otherwise.
pub fn build_node(config: ServeConfig) -> Arc<Node> {
    let metrics = Arc::new(Metrics::new());
    let boot_id = crate::secret::random_token(12);
    let engine: Option<Arc<dyn ClusterPort>> = match &config.cluster {
        Some(c) => {
            let (token, m) = (config.admin_token.clone(), metrics.clone());
            let made: Result<Arc<dyn ClusterPort>, ClusterError> = match c.engine {
                Engine::Nats => Nats::new(c.clone(), &config.node_id, &boot_id, token, m).map(|n| n as _),
                _ => Cluster::new(c.clone(), &config.node_id, &boot_id, token, m).map(|n| n as _),
            };
            match made {
                Ok(engine) => Some(engine),
                // The URL was validated with the config, so this does not happen.
                Err(e) => {
                    tracing::error!(error = %e, "Cluster mode could not start; serving standalone.");
                    None
                }
            }
        }
        None => None,
    };
    Node::with_cluster(config, boot_id, metrics, engine)
}

/// Serves `node` with its [`routes`] on `listener` until `shutdown` resolves (see
/// [`server::run`]).
///
/// # Errors
/// Serving failed.
pub async fn serve_node(
    listener: TcpListener,
    node: Arc<Node>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::run(listener, node.clone(), routes(node), shutdown).await
}

/// The file read when `--config`/`RTC_CONFIG` is not given and it exists (as the
/// console commands do).
pub const DEFAULT_CONFIG: &str = "rtc.toml";

/// Resolves flags, environment and file into a config. The file is `--config` (or
/// `RTC_CONFIG`), else `./rtc.toml` when it exists, else none.
///
/// # Errors
/// Every problem found, each naming its field.
pub fn load_config(args: &ServeArgs) -> Result<ServeConfig, ConfigErrors> {
    let default = std::path::Path::new(DEFAULT_CONFIG);
    let file = match &args.config {
        Some(path) => config::read_file(path)?,
        None if default.is_file() => config::read_file(default)?,
        None => FileConfig::default(),
    };
    config::resolve(args, file, &config::process_env)
}

/// Raises the soft open-file limit to the hard limit; returns the resulting limit.
pub fn raise_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(_) => rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft).unwrap_or(0),
    }
}

fn banner(config: &ServeConfig, addr: SocketAddr, files: u64) {
    let mut out = std::io::stdout().lock();
    match &config.tls {
        None => {
            let _ = writeln!(out, "rtc listening on http://{addr}{}", config.path);
        }
        Some(tls) => {
            let _ = writeln!(out, "rtc listening on https://{addr}{} (TLS: wss:// and https://)", config.path);
            let _ = writeln!(out, "TLS certificate: {}", tls.cert.display());
        }
    }
    if config.dev_app {
        let a = &config.apps[0];
        let _ = writeln!(
            out,
            "WARNING: no app configured; serving the DEVELOPMENT app (do not use in production):\n  app id: {}\n  key:    {}\n  secret: {}",
            a.id,
            a.key,
            a.secret.expose()
        );
        if addr.ip().is_loopback() {
            let _ = writeln!(out, "  reachable from this machine only; give --host 0.0.0.0 to accept others");
        }
    }
    if config.admin_token_generated {
        let _ = writeln!(
            out,
            "admin token (generated; set --admin-token or RTC_ADMIN_TOKEN to fix it): {}",
            config.admin_token.expose()
        );
    }
    let _ = writeln!(out, "open-file limit: {files}");
    let _ = out.flush();
}

/// After the second signal the process exits within this, whatever is still closing.
const SECOND_SIGNAL_GRACE: Duration = Duration::from_secs(2);
/// After the drain deadline, the time the node has to close its sockets and leave the
/// cluster before the process exits regardless.
const AFTER_DEADLINE_GRACE: Duration = Duration::from_secs(8);

/// SIGINT/SIGTERM handling, installed before the banner so no signal is lost: the first
/// signal starts the paced drain (the process exits when it is done), a second one
/// stops at once.
///
/// A node with no socket skips the pre-drain delay and exits at once: there is nothing
/// to hand over (HTTP API calls the load balancer still sends in the moment it takes to
/// see the node go are refused, and the client libraries retry them).
///
/// Backstops that hold whatever a task or the log sink does: after the first signal the
/// process exits at most [`AFTER_DEADLINE_GRACE`] after the drain deadline, after the
/// second at most [`SECOND_SIGNAL_GRACE`] later (exit code 1 when one of them fires).
///
/// # Errors
/// The handlers could not be installed.
pub fn handle_signals(node: Arc<Node>) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        let mut seen = 0;
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
                () = node.shutdown.cancelled() => return,
            };
            seen += 1;
            if seen == 1 {
                let request = if node.connection_count() == 0 {
                    drain::DrainRequest { pre_delay_secs: Some(0.0), ..Default::default() }
                } else {
                    drain::DrainRequest::default()
                };
                match drain::start(&node, &request) {
                    Ok(_) => tracing::info!(signal = name, "Draining; send the signal again to stop at once."),
                    Err(_) => tracing::info!(signal = name, "Already draining; send the signal again to stop at once."),
                }
                let left = node
                    .drain
                    .lock()
                    .as_ref()
                    .map(|d| (d.started + d.config.timeout).saturating_duration_since(tokio::time::Instant::now()))
                    .unwrap_or(node.config.drain.timeout);
                exit_after(left + AFTER_DEADLINE_GRACE, "the drain deadline passed");
            } else {
                tracing::warn!(signal = name, "Second signal: stopping now.");
                node.shutdown.cancel();
                exit_after(SECOND_SIGNAL_GRACE, "a second signal");
                return;
            }
        }
    });
    Ok(())
}

/// Ends the process after `delay` if it is still running then (a plain thread, so a
/// wedged runtime cannot hold it up).
fn exit_after(delay: Duration, why: &'static str) {
    let _ = std::thread::Builder::new().name("rtc-exit".into()).spawn(move || {
        std::thread::sleep(delay);
        tracing::error!(reason = why, "Still running {:.1} s after {why}; exiting now.", delay.as_secs_f64());
        crate::logging::flush(Duration::from_millis(200));
        std::process::exit(1);
    });
}

/// Runs `rtc serve` to completion.
///
/// # Errors
/// The listen backlog asked for (the kernel caps it at `net.core.somaxconn`, 4096 on
/// current kernels). tokio's default of 1,024 overflows at 2,000 connects per second
/// whenever the accept loop is busy for half a second: the dropped SYNs are retried by
/// the client's kernel after 1 s, the 1-second tail of a reconnect wave.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr` (`host:port`, the host a name or an address) with [`LISTEN_BACKLOG`]:
/// the first resolved address that binds.
async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        // As std's and tokio's own bind: a restarted node can take its port back at once.
        socket.set_reuseaddr(true)?;
        match socket.bind(a).and_then(|()| socket.listen(LISTEN_BACKLOG)) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "no address to bind")))
}

/// A bad config, a failed bind or a server error.
pub async fn run(args: ServeArgs) -> Result<(), ServeError> {
    let mut config = load_config(&args)?;
    crate::logging::init(config.log_format);
    if args.config.is_none() && std::path::Path::new(DEFAULT_CONFIG).is_file() {
        tracing::info!(file = DEFAULT_CONFIG, "Read the config file in the working directory.");
    }
    let files = raise_file_limit();
    let quota: u64 = config.apps.iter().map(|a| a.max_connections).sum();
    if quota > 0 && files < quota {
        tracing::warn!(
            open_files = files,
            app_quota = quota,
            "The open-file limit is below the apps' connection quotas; raise LimitNOFILE / ulimit -n."
        );
    }
    let addr = format!("{}:{}", config.host, config.port);
    let listener = bind(&addr).await.map_err(|source| ServeError::Bind { addr: addr.clone(), source })?;
    let local = listener.local_addr()?;
    config.port = local.port();
    if let Some(c) = config.cluster.as_mut() {
        // A default advertise URL made from port 0 gets the port actually bound.
        if let Some(base) = c.advertise_url.strip_suffix(":0") {
            c.advertise_url = format!("{base}:{}", local.port());
        }
    }
    let node = build_node(config);
    node.metrics.open_files_limit.set(files as i64);
    handle_signals(node.clone())?;
    banner(&node.config, local, files);
    let scheme = if node.config.tls.is_some() { "https" } else { "http" };
    tracing::info!(addr = %local, scheme, node = %node.config.node_id, apps = node.config.apps.len(), open_files = files, "Listening.");
    let stop = node.shutdown.clone().cancelled_owned();
    serve_node(listener, node.clone(), stop).await?;
    if let Some(reason) = node.fatal.lock().clone() {
        return Err(ServeError::Fatal(reason));
    }
    tracing::info!("Stopped.");
    Ok(())
}
