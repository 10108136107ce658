//! One bench socket: connect as pusher-js does, subscribe with signatures an app's auth
//! endpoint would produce, then receive until the run ends, answering pings, pinging
//! after idle periods and counting every delivery.

use std::borrow::Cow;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use super::args::ChannelKind;
use super::book::{parse_header, PresenceBook, SeqSet};
use super::swarm::{ChannelPlan, PresenceCommand, Shared, SocketPlan};
use super::target::Target;
use crate::protocol::auth::{auth_for, channel_string_to_sign};

/// pusher-js waits this long for any message after its ping before it gives up.
const PONG_TIMEOUT: Duration = Duration::from_secs(30);
/// Wake-up for a socket with nothing scheduled; the run's cancellation ends it sooner.
const IDLE_WAKE: Duration = Duration::from_secs(3_600);
/// Longest failure label kept (labels are counted per distinct text).
const LABEL_CHARS: usize = 80;

/// A bench socket's WebSocket.
pub(crate) type Ws = WebSocketStream<TcpStream>;

/// Why a socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// Creating or binding the local socket failed.
    #[error("local socket: {0}")]
    Socket(#[source] io::Error),
    /// The TCP connect failed.
    #[error("connect: {0}")]
    Connect(#[source] io::Error),
    /// The WebSocket upgrade failed.
    #[error("handshake: {0}")]
    Handshake(#[source] tungstenite::Error),
    /// The server sent `pusher:error` instead of `connection_established`.
    #[error("pusher:error {code:?}: {message}")]
    Refused {
        /// The error code.
        code: Option<i64>,
        /// The server's message.
        message: String,
    },
    /// The server closed the socket first.
    #[error("closed by the server (code {0:?})")]
    Closed(Option<u16>),
    /// The first frame was something else.
    #[error("unexpected first frame '{0}'")]
    Unexpected(String),
}

fn io_label(stage: &str, e: &io::Error) -> String {
    // Linux errno values: the limits an operator can act on get names.
    match e.raw_os_error() {
        Some(24) => "open-file limit reached (EMFILE)".into(),
        Some(23) => "system file table full (ENFILE)".into(),
        Some(99) => "no free local port (EADDRNOTAVAIL)".into(),
        Some(98) => "local port in use (EADDRINUSE)".into(),
        Some(111) => format!("{stage}: connection refused"),
        Some(104) => format!("{stage}: connection reset"),
        Some(110) => format!("{stage}: timed out (ETIMEDOUT)"),
        _ => format!("{stage}: {:?}", e.kind()),
    }
}

/// A short label for a WebSocket error at `stage` (a reset has no close frame: the
/// client sees code 1006).
pub(crate) fn ws_error_label(stage: &str, e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Io(io) => io_label(stage, io),
        tungstenite::Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
            format!("{stage}: reset without a closing handshake")
        }
        other => label(format!("{stage}: {other}")),
    }
}

impl ClientError {
    /// A short label to count failures by.
    pub(crate) fn label(&self) -> String {
        let text = match self {
            ClientError::Socket(e) => io_label("socket", e),
            ClientError::Connect(e) => io_label("connect", e),
            ClientError::Handshake(tungstenite::Error::Io(e)) => io_label("handshake", e),
            ClientError::Handshake(tungstenite::Error::Http(r)) => format!("handshake: HTTP {}", r.status()),
            other => other.to_string(),
        };
        text.chars().take(LABEL_CHARS).collect()
    }
}

/// `connection_established` contents.
#[derive(Debug, Deserialize)]
pub(crate) struct Established {
    /// The socket id that channel signatures cover.
    pub socket_id: String,
    /// The server's activity timeout (s).
    #[serde(default)]
    pub activity_timeout: Option<u64>,
}

/// Any server frame, borrowed from the message text.
#[derive(Debug, Deserialize)]
pub(crate) struct Incoming<'a> {
    /// Event name.
    #[serde(borrow)]
    pub event: Cow<'a, str>,
    /// Channel, for channel events.
    #[serde(borrow, default)]
    pub channel: Option<Cow<'a, str>>,
    /// Data, as sent.
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
struct ErrorData {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MemberData<'a> {
    #[serde(borrow)]
    user_id: Cow<'a, str>,
}

/// A frame's `data` as text: a JSON string decoded (borrowed when it has no escapes),
/// anything else as its JSON.
fn data_text(raw: Option<&RawValue>) -> Cow<'_, str> {
    let Some(raw) = raw else { return Cow::Borrowed("") };
    let json = raw.get();
    if json.starts_with('"') {
        if let Ok(s) = serde_json::from_str::<&str>(json) {
            return Cow::Borrowed(s);
        }
        if let Ok(s) = serde_json::from_str::<String>(json) {
            return Cow::Owned(s);
        }
    }
    Cow::Borrowed(json)
}

/// The error a `pusher:error` frame's data describes.
pub(crate) fn refusal(data: Option<&RawValue>) -> ClientError {
    let e: Option<ErrorData> = serde_json::from_str(&data_text(data)).ok();
    ClientError::Refused {
        code: e.as_ref().and_then(|e| e.code),
        message: e.and_then(|e| e.message).unwrap_or_default().chars().take(LABEL_CHARS).collect(),
    }
}

/// Opens socket `index`: TCP (from its source address), WebSocket upgrade, then waits
/// for `connection_established`.
pub(crate) async fn connect(target: &Target, index: usize) -> Result<(Ws, Established), ClientError> {
    let socket =
        if target.addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.map_err(ClientError::Socket)?;
    if let Some(ip) = target.source_for(index) {
        socket.bind(SocketAddr::new(ip, 0)).map_err(ClientError::Socket)?;
    }
    let stream = socket.connect(target.addr).await.map_err(ClientError::Connect)?;
    // Best effort: small frames should leave at once.
    let _ = stream.set_nodelay(true);
    let (mut ws, _response) =
        tokio_tungstenite::client_async_with_config(target.ws_url.as_str(), stream, Some(target.ws_config))
            .await
            .map_err(ClientError::Handshake)?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let frame: Incoming<'_> =
                    serde_json::from_str(text.as_str()).map_err(|_| ClientError::Unexpected("not JSON".into()))?;
                return match frame.event.as_ref() {
                    "pusher:connection_established" => serde_json::from_str(&data_text(frame.data))
                        .map(|e| (ws, e))
                        .map_err(|_| ClientError::Unexpected("connection_established without socket_id".into())),
                    "pusher:error" => Err(refusal(frame.data)),
                    other => Err(ClientError::Unexpected(other.chars().take(LABEL_CHARS).collect())),
                };
            }
            Some(Ok(Message::Close(frame))) => return Err(ClientError::Closed(frame.map(|f| u16::from(f.code)))),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(ClientError::Handshake(e)),
            None => return Err(ClientError::Closed(None)),
        }
    }
}

/// The `pusher:subscribe` frame for a channel, signed for this socket.
pub(crate) fn subscribe_frame(
    target: &Target,
    socket_id: &str,
    channel: &str,
    kind: ChannelKind,
    user: &str,
) -> String {
    let data = match kind {
        ChannelKind::Public => serde_json::json!({ "channel": channel }),
        ChannelKind::Private => {
            let auth = auth_for(&target.key, &target.secret, &channel_string_to_sign(socket_id, channel, None));
            serde_json::json!({ "channel": channel, "auth": auth })
        }
        ChannelKind::Presence => {
            let channel_data = serde_json::json!({ "user_id": user, "user_info": {} }).to_string();
            let to_sign = channel_string_to_sign(socket_id, channel, Some(&channel_data));
            let auth = auth_for(&target.key, &target.secret, &to_sign);
            serde_json::json!({ "channel": channel, "auth": auth, "channel_data": channel_data })
        }
    };
    serde_json::json!({ "event": "pusher:subscribe", "data": data }).to_string()
}

/// Runs one socket until the run is cancelled or the server drops it.
pub(crate) async fn run_socket(shared: Arc<Shared>, target: Arc<Target>, plan: SocketPlan) {
    let started = Instant::now();
    let opened = tokio::select! {
        () = shared.cancel.cancelled() => return,
        r = timeout(target.connect_timeout, connect(&target, plan.index)) => r,
    };
    let (ws, established) = match opened {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => {
            shared.failures.add(e.label());
            shared.failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        Err(_) => {
            shared.failures.add("connect + handshake timed out");
            shared.failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    shared.connect_latency.record(started.elapsed());
    shared.connected.fetch_add(1, Ordering::Relaxed);
    // pusher-js pings after min(its own activityTimeout, the server's) of silence.
    let server_timeout = established.activity_timeout.map(Duration::from_secs);
    let ping_every = match (plan.activity_timeout, server_timeout) {
        (Some(c), Some(s)) if !s.is_zero() => Some(c.min(s)),
        (c, _) => c,
    };
    let mut session = Session::new(shared, target, plan, established.socket_id, ping_every);
    let end = session.run(ws).await;
    session.finish(end);
}

/// How a socket's life ended.
enum End {
    /// The run is over.
    Cancelled,
    /// A failure, with its label.
    Failed(String),
}

/// One socket's state after `connection_established`.
struct Session {
    shared: Arc<Shared>,
    target: Arc<Target>,
    index: usize,
    socket_id: String,
    channel: Option<ChannelPlan>,
    /// Presence user number, for sockets of the churned presence channel.
    user: Option<usize>,
    join_at_start: bool,
    commands: Option<mpsc::Receiver<PresenceCommand>>,
    /// Subscriptions awaiting `subscription_succeeded` before the socket is ready.
    pending: usize,
    ready: bool,
    subscribe_sent: Instant,
    /// Whether this socket is counted among its tracked channel's subscribers.
    counted: bool,
    seen: SeqSet,
    last_inbound: Instant,
    ping_every: Option<Duration>,
    awaiting_pong: Option<Instant>,
}

impl Session {
    fn new(
        shared: Arc<Shared>,
        target: Arc<Target>,
        plan: SocketPlan,
        socket_id: String,
        ping_every: Option<Duration>,
    ) -> Self {
        let now = Instant::now();
        let (user, join_at_start, commands) = match plan.presence {
            Some(role) => (Some(role.user), role.join_at_start, Some(role.commands)),
            None => (None, false, None),
        };
        Session {
            shared,
            target,
            index: plan.index,
            socket_id,
            channel: plan.channel,
            user,
            join_at_start,
            commands,
            pending: 0,
            ready: false,
            subscribe_sent: now,
            counted: false,
            seen: SeqSet::default(),
            last_inbound: now,
            ping_every: ping_every.filter(|d| !d.is_zero()),
            awaiting_pong: None,
        }
    }

    fn presence(&self) -> Option<&PresenceBook> {
        self.shared.presence.as_ref()
    }

    fn presence_frame(&self, command: PresenceCommand) -> Option<String> {
        let (book, user) = (self.presence()?, self.user?);
        Some(match command {
            PresenceCommand::Join => subscribe_frame(
                &self.target,
                &self.socket_id,
                &book.channel,
                ChannelKind::Presence,
                &PresenceBook::user_id(user),
            ),
            PresenceCommand::Leave => {
                serde_json::json!({ "event": "pusher:unsubscribe", "data": { "channel": book.channel } }).to_string()
            }
        })
    }

    /// The frames to send at start: the channel, then the presence join of a member.
    fn initial_frames(&mut self) -> Vec<String> {
        let mut frames = Vec::new();
        if let Some(c) = &self.channel {
            let user = PresenceBook::user_id(self.user.unwrap_or(self.index));
            frames.push(subscribe_frame(&self.target, &self.socket_id, &c.name, c.kind, &user));
        }
        if self.join_at_start {
            frames.extend(self.presence_frame(PresenceCommand::Join));
        }
        self.pending = frames.len();
        frames
    }

    fn next_wake(&self, sub_deadline: Instant) -> Instant {
        if !self.ready {
            sub_deadline
        } else if let Some(since) = self.awaiting_pong {
            since + PONG_TIMEOUT
        } else if let Some(every) = self.ping_every {
            self.last_inbound + every
        } else {
            Instant::now() + IDLE_WAKE
        }
    }

    async fn run(&mut self, mut ws: Ws) -> End {
        let frames = self.initial_frames();
        self.subscribe_sent = Instant::now();
        for f in frames {
            if let Err(e) = ws.send(Message::text(f)).await {
                return End::Failed(label(format!("send: {e}")));
            }
        }
        if self.pending == 0 {
            self.become_ready(None);
        }
        let sub_deadline = Instant::now() + self.target.connect_timeout;
        // One cancellation future for the socket's life: making one per loop turn would
        // register and unregister a waiter on every frame.
        let shared = self.shared.clone();
        let cancelled = shared.cancel.cancelled();
        tokio::pin!(cancelled);
        // The timer is re-armed only when the next wake-up moves earlier or after it
        // fires: re-arming on every frame would cost a timer-wheel update per delivery.
        // Firing early is harmless; `on_timer` checks what is actually due.
        let mut armed = self.next_wake(sub_deadline);
        let timer = sleep_until(armed);
        tokio::pin!(timer);
        loop {
            let mut fired = false;
            let outgoing = tokio::select! {
                biased;
                () = &mut cancelled => return End::Cancelled,
                msg = ws.next() => match msg {
                    Some(Ok(Message::Text(text))) => match self.on_text(text.as_str()) {
                        Ok(reply) => reply,
                        Err(why) => return End::Failed(why),
                    },
                    Some(Ok(Message::Close(frame))) => {
                        let code = frame.map(|f| u16::from(f.code));
                        return End::Failed(format!("closed by the server (code {code:?})"));
                    }
                    Some(Ok(_)) => None,
                    Some(Err(e)) => return End::Failed(label(format!("receive: {e}"))),
                    None => return End::Failed("closed by the server (no close frame)".into()),
                },
                cmd = next_command(&mut self.commands) => match cmd {
                    Some(c) => self.on_command(c),
                    None => {
                        self.commands = None;
                        None
                    }
                },
                () = &mut timer => {
                    fired = true;
                    match self.on_timer(sub_deadline) {
                        Ok(reply) => reply,
                        Err(why) => return End::Failed(why),
                    }
                }
            };
            if let Some(frame) = outgoing {
                if let Err(e) = ws.send(Message::text(frame)).await {
                    return End::Failed(label(format!("send: {e}")));
                }
            }
            let want = self.next_wake(sub_deadline);
            if fired || want < armed {
                armed = want;
                timer.as_mut().reset(want);
            }
        }
    }

    /// Handles one text frame; returns a frame to send back, or why the socket fails.
    fn on_text(&mut self, text: &str) -> Result<Option<String>, String> {
        let now = Instant::now();
        self.last_inbound = now;
        self.awaiting_pong = None;
        self.shared.frames_in.fetch_add(1, Ordering::Relaxed);
        let Ok(frame) = serde_json::from_str::<Incoming<'_>>(text) else {
            self.shared.server_errors.add("frame that is not JSON");
            return Ok(None);
        };
        match frame.event.as_ref() {
            "pusher:ping" => {
                self.shared.pongs_sent.fetch_add(1, Ordering::Relaxed);
                return Ok(Some(r#"{"event":"pusher:pong","data":{}}"#.to_string()));
            }
            "pusher_internal:subscription_succeeded" => self.subscribed(frame.channel.as_deref(), now),
            "pusher:error" | "pusher:subscription_error" => {
                let why = label(refusal(frame.data).to_string());
                if !self.ready {
                    return Err(why);
                }
                self.shared.server_errors.add(why);
            }
            "pusher_internal:member_added" | "pusher_internal:member_removed" => {
                if let (Some(book), true) = (self.presence(), self.shared.is_measuring()) {
                    let data = data_text(frame.data);
                    if let Ok(m) = serde_json::from_str::<MemberData<'_>>(&data) {
                        book.observe(&m.user_id, self.shared.micros_at(now));
                    }
                }
            }
            e if e.starts_with("pusher") => {}
            _ => self.delivered(&data_text(frame.data), now),
        }
        Ok(None)
    }

    fn subscribed(&mut self, channel: Option<&str>, now: Instant) {
        let Some(channel) = channel else { return };
        if let Some(c) = self.channel.as_ref().filter(|c| c.name == channel) {
            if let (Some(i), Some(book), false) = (c.tracked, self.shared.events.as_ref(), self.counted) {
                if let Some(n) = book.subscribers.get(i) {
                    n.fetch_add(1, Ordering::Relaxed);
                    self.counted = true;
                }
            }
        }
        if let (Some(book), Some(user)) = (self.presence(), self.user) {
            if book.channel == channel {
                if let Some(m) = book.member.get(user) {
                    m.store(true, Ordering::Relaxed);
                }
            }
        }
        if !self.ready && self.pending > 0 {
            self.pending -= 1;
            if self.pending == 0 {
                self.become_ready(Some(now));
            }
        }
    }

    fn become_ready(&mut self, subscribed_at: Option<Instant>) {
        self.ready = true;
        self.shared.ready.fetch_add(1, Ordering::Relaxed);
        if let Some(at) = subscribed_at {
            self.shared.subscribe_latency.record(at.saturating_duration_since(self.subscribe_sent));
        }
    }

    /// An event on the socket's channel: check its header, count it once.
    fn delivered(&mut self, data: &str, now: Instant) {
        let Some(book) = self.shared.events.as_ref() else {
            return;
        };
        let Some((sent_us, seq, id)) = parse_header(data) else {
            book.foreign.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if !self.seen.insert(seq) {
            book.duplicates.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Some(later_sent_us) = self.seen.out_of_order(seq, sent_us) {
            book.out_of_order(id, later_sent_us);
        }
        book.deliver(id, self.shared.micros_at(now).saturating_sub(sent_us));
    }

    fn on_command(&mut self, command: PresenceCommand) -> Option<String> {
        let (book, user) = (self.presence()?, self.user?);
        if command == PresenceCommand::Leave {
            if let Some(m) = book.member.get(user) {
                m.store(false, Ordering::Relaxed);
            }
        }
        let frame = self.presence_frame(command)?;
        book.stamp(user, self.shared.now_us());
        Some(frame)
    }

    fn on_timer(&mut self, sub_deadline: Instant) -> Result<Option<String>, String> {
        let now = Instant::now();
        if !self.ready {
            return if now >= sub_deadline { Err("subscription timed out".into()) } else { Ok(None) };
        }
        if let Some(since) = self.awaiting_pong {
            if now >= since + PONG_TIMEOUT {
                self.shared.pongs_missing.fetch_add(1, Ordering::Relaxed);
                self.awaiting_pong = None;
                self.last_inbound = now;
            }
            return Ok(None);
        }
        match self.ping_every {
            Some(every) if now >= self.last_inbound + every => {
                self.shared.pings_sent.fetch_add(1, Ordering::Relaxed);
                self.awaiting_pong = Some(now);
                Ok(Some(r#"{"event":"pusher:ping","data":{}}"#.to_string()))
            }
            _ => Ok(None),
        }
    }

    /// Books the end of the socket.
    fn finish(self, end: End) {
        if let (Some(book), Some(user)) = (self.presence(), self.user) {
            if let Some(m) = book.member.get(user) {
                m.store(false, Ordering::Relaxed);
            }
        }
        let End::Failed(why) = end else { return };
        if self.ready {
            if let (true, Some(i), Some(book)) =
                (self.counted, self.channel.as_ref().and_then(|c| c.tracked), self.shared.events.as_ref())
            {
                if let Some(n) = book.subscribers.get(i) {
                    n.fetch_sub(1, Ordering::Relaxed);
                }
            }
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            self.shared.drops.add(why);
        } else {
            self.shared.failed.fetch_add(1, Ordering::Relaxed);
            self.shared.failures.add(why);
        }
    }
}

/// `text` cut to the length failure labels are kept at.
pub(crate) fn label(text: String) -> String {
    text.chars().take(LABEL_CHARS).collect()
}

async fn next_command(rx: &mut Option<mpsc::Receiver<PresenceCommand>>) -> Option<PresenceCommand> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_text_decodes_strings_and_keeps_objects() {
        let raw: Box<RawValue> = serde_json::from_str(r#""12:3:4""#).expect("json");
        assert!(matches!(data_text(Some(&raw)), Cow::Borrowed("12:3:4")));
        let raw: Box<RawValue> = serde_json::from_str(r#""{\"user_id\":\"u1\"}""#).expect("json");
        assert_eq!(data_text(Some(&raw)), r#"{"user_id":"u1"}"#);
        let raw: Box<RawValue> = serde_json::from_str(r#"{"code":4001}"#).expect("json");
        assert_eq!(data_text(Some(&raw)), r#"{"code":4001}"#);
        assert_eq!(data_text(None), "");
    }

    #[test]
    fn refusal_reads_both_error_shapes() {
        let raw: Box<RawValue> = serde_json::from_str(r#"{"code":4001,"message":"No app"}"#).expect("json");
        assert!(matches!(refusal(Some(&raw)), ClientError::Refused { code: Some(4001), .. }));
        let raw: Box<RawValue> = serde_json::from_str(r#""{\"code\":4004,\"message\":\"Over\"}""#).expect("json");
        assert!(matches!(refusal(Some(&raw)), ClientError::Refused { code: Some(4004), .. }));
    }

    #[test]
    fn errno_labels_name_the_limit() {
        let e = ClientError::Socket(io::Error::from_raw_os_error(24));
        assert_eq!(e.label(), "open-file limit reached (EMFILE)");
        let e = ClientError::Connect(io::Error::from_raw_os_error(99));
        assert_eq!(e.label(), "no free local port (EADDRNOTAVAIL)");
    }
}
