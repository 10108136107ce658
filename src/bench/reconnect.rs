//! A `rtc bench drain` socket: it opens on node A, and when that socket closes it
//! reconnects the way pusher-js does, to the survivor the stand-in load balancer picks,
//! and signs its private channels again.
//!
//! pusher-js v8 (`protocol.ts getCloseAction`, `connection_manager.ts`):
//! * close code 4200–4299 (and 4000): reconnect at once;
//! * 4100–4199, 1002–1004, any other code below 4000, or a connection lost without a
//!   close frame: reconnect after 1 s;
//! * 4001–4099 and ≥ 4300: give up for good;
//! * no jitter anywhere.
//!
//! A failed open (refused, HTTP 503, timeout) is tried again at once on the next
//! survivor (pusher-js's cached WebSocket attempt fails fast into its full strategy),
//! then on that strategy's attempt timers: 15 s, 30 s, then every 60 s.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use super::args::ChannelKind;
use super::client::{self, label, refusal, Incoming, Ws};
use super::swarm::Shared;
use super::target::Target;
use super::timeline::DrainBook;

/// pusher-js's reconnect delay after a close it does not treat as "reconnect now".
const RETRY_AFTER_CLOSE: Duration = Duration::from_secs(1);
/// Gaps between the starts of failed open attempts after the first fallback.
const ATTEMPT_GAPS: [Duration; 3] = [Duration::from_secs(15), Duration::from_secs(30), Duration::from_secs(60)];
/// Longest wait for our reply to a close frame to leave.
const CLOSE_REPLY: Duration = Duration::from_millis(200);
const PONG: &str = r#"{"event":"pusher:pong","data":{}}"#;

/// The other nodes of the cluster and the stand-in load balancer's round-robin.
#[derive(Debug)]
pub(crate) struct Survivors {
    /// One target per survivor.
    pub targets: Vec<Arc<Target>>,
    next: AtomicUsize,
}

impl Survivors {
    /// Survivors in the order given.
    pub(crate) fn new(targets: Vec<Arc<Target>>) -> Self {
        Survivors { targets, next: AtomicUsize::new(0) }
    }

    /// The survivor the next connection goes to.
    fn pick(&self) -> (usize, &Arc<Target>) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.targets.len().max(1);
        (i, &self.targets[i])
    }
}

/// What pusher-js does after a close: reconnect after a delay, or never.
pub(crate) fn after_close(code: Option<u16>) -> Option<Duration> {
    match code {
        Some(4000) | Some(4200..=4299) => Some(Duration::ZERO),
        Some(4001..=4099) => None,
        Some(c) if c >= 4300 => None,
        // 4100–4199 back off 1 s; codes below 4000 and a lost connection reconnect 1 s
        // after the `closed` state.
        _ => Some(RETRY_AFTER_CLOSE),
    }
}

/// Whether a close code is a reconnect hint (pusher-js's `retry` action).
pub(crate) fn is_hint(code: Option<u16>) -> bool {
    matches!(code, Some(4200..=4299))
}

/// How a socket's stay on a node ended.
enum Ended {
    /// The run is over.
    Cancelled,
    /// The node closed it (code `None`: no close frame).
    Closed { code: Option<u16>, why: String },
}

/// Runs drain socket `index`, joined to `channels` (private, signed), until the run ends.
pub(crate) async fn run_socket(
    shared: Arc<Shared>,
    home: Arc<Target>,
    survivors: Arc<Survivors>,
    index: usize,
    channels: Vec<String>,
) {
    let Some(book) = shared.drain.as_ref() else { return };
    let started = Instant::now();
    let joined = tokio::select! {
        () = shared.cancel.cancelled() => return,
        r = join(&shared, &home, index, &channels, |_| {}) => r,
    };
    let (mut ws, subscribed) = match joined {
        Ok(x) => x,
        Err(why) => {
            shared.failures.add(why);
            shared.failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    shared.connected.fetch_add(1, Ordering::Relaxed);
    shared.connect_latency.record(subscribed.connected.saturating_duration_since(started));
    if !channels.is_empty() {
        shared.subscribe_latency.record(subscribed.ready.saturating_duration_since(subscribed.connected));
    }
    shared.ready.fetch_add(1, Ordering::Relaxed);
    book.ready_on_home();
    let mut on_home = true;
    loop {
        let (code, why) = match hold(&shared, &mut ws).await {
            Ended::Cancelled => return,
            Ended::Closed { code, why } => (code, why),
        };
        drop(ws);
        let closed = Instant::now();
        let tag = format!("{} {why}", code.map_or("no close frame".into(), |c| c.to_string()));
        if on_home {
            book.closed_by_home(label(tag), is_hint(code), closed);
            on_home = false;
        } else {
            book.closed_by_survivor(label(tag));
        }
        let Some(delay) = after_close(code) else {
            book.give_up();
            return;
        };
        tokio::select! {
            () = shared.cancel.cancelled() => return,
            () = sleep_until(closed + delay) => {}
        }
        ws = match reconnect(&shared, book, &survivors, index, &channels).await {
            Some(ws) => ws,
            None => return,
        };
        book.came_back(closed, Instant::now());
    }
}

/// Tries survivors until one takes the socket and every channel is resubscribed;
/// `None` when the run ends first.
async fn reconnect(
    shared: &Arc<Shared>,
    book: &DrainBook,
    survivors: &Survivors,
    index: usize,
    channels: &[String],
) -> Option<Ws> {
    let mut failures = 0usize;
    loop {
        let (which, target) = survivors.pick();
        let attempt = Instant::now();
        let joined = tokio::select! {
            () = shared.cancel.cancelled() => return None,
            r = join(shared, target, index, channels, |at| book.arrived(which, at)) => r,
        };
        match joined {
            Ok((ws, _)) => return Some(ws),
            Err(why) => {
                book.failed_attempts.add(why);
                // The first failure falls through to the next attempt at once.
                let gap = match failures {
                    0 => Duration::ZERO,
                    n => ATTEMPT_GAPS[(n - 1).min(ATTEMPT_GAPS.len() - 1)],
                };
                failures += 1;
                tokio::select! {
                    () = shared.cancel.cancelled() => return None,
                    () = sleep_until(attempt + gap) => {}
                }
            }
        }
    }
}

/// When a join reached each stage.
struct Joined {
    connected: Instant,
    ready: Instant,
}

/// Connects to `target` and subscribes to `channels`, within the connect timeout.
/// `on_connected` sees the moment `connection_established` arrived.
async fn join(
    shared: &Arc<Shared>,
    target: &Target,
    index: usize,
    channels: &[String],
    on_connected: impl FnOnce(Instant),
) -> Result<(Ws, Joined), String> {
    let deadline = Instant::now() + target.connect_timeout;
    let (mut ws, established) = match tokio::time::timeout_at(deadline, client::connect(target, index)).await {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => return Err(e.label()),
        Err(_) => return Err("connect + handshake timed out".into()),
    };
    let connected = Instant::now();
    on_connected(connected);
    for channel in channels {
        let frame = client::subscribe_frame(target, &established.socket_id, channel, ChannelKind::Private, "");
        if let Err(e) = ws.send(Message::text(frame)).await {
            return Err(label(format!("send: {e}")));
        }
    }
    if let Some(book) = shared.drain.as_ref() {
        book.signed(channels.len(), Instant::now());
    }
    match tokio::time::timeout_at(deadline, await_subscriptions(shared, &mut ws, channels.len())).await {
        Ok(Ok(())) => Ok((ws, Joined { connected, ready: Instant::now() })),
        Ok(Err(why)) => Err(why),
        Err(_) => Err("subscription timed out".into()),
    }
}

/// Reads until `pending` subscriptions succeeded, answering pings.
async fn await_subscriptions(shared: &Shared, ws: &mut Ws, mut pending: usize) -> Result<(), String> {
    while pending > 0 {
        let text = match ws.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                return Err(format!("closed while subscribing (code {:?})", frame.map(|f| u16::from(f.code))))
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(label(format!("receive: {e}"))),
            None => return Err("closed while subscribing (no close frame)".into()),
        };
        shared.frames_in.fetch_add(1, Ordering::Relaxed);
        let Ok(frame) = serde_json::from_str::<Incoming<'_>>(text.as_str()) else { continue };
        match frame.event.as_ref() {
            "pusher_internal:subscription_succeeded" => pending -= 1,
            "pusher:ping" => ws.send(Message::text(PONG)).await.map_err(|e| label(format!("send: {e}")))?,
            "pusher:error" | "pusher:subscription_error" => return Err(label(refusal(frame.data).to_string())),
            _ => {}
        }
    }
    Ok(())
}

/// Stays on the node, answering pings, until it closes the socket or the run ends.
async fn hold(shared: &Arc<Shared>, ws: &mut Ws) -> Ended {
    loop {
        let msg = tokio::select! {
            () = shared.cancel.cancelled() => return Ended::Cancelled,
            msg = ws.next() => msg,
        };
        match msg {
            Some(Ok(Message::Text(text))) => {
                shared.frames_in.fetch_add(1, Ordering::Relaxed);
                let ping = serde_json::from_str::<Incoming<'_>>(text.as_str()).is_ok_and(|f| f.event == "pusher:ping");
                if ping {
                    shared.pongs_sent.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = ws.send(Message::text(PONG)).await {
                        return Ended::Closed { code: None, why: label(format!("send: {e}")) };
                    }
                }
            }
            Some(Ok(Message::Close(frame))) => {
                // A browser fires `close` once the closing handshake is done: send our
                // reply (tungstenite queued it) before reconnecting.
                let _ = timeout(CLOSE_REPLY, ws.flush()).await;
                let (code, why) = match frame {
                    Some(CloseFrame { code, reason }) => (Some(u16::from(code)), reason.to_string()),
                    None => (None, "empty close frame".to_string()),
                };
                return Ended::Closed { code, why };
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Ended::Closed { code: None, why: client::ws_error_label("receive", &e) },
            None => return Ended::Closed { code: None, why: "connection closed".into() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_map_to_pusher_js_actions() {
        assert_eq!(after_close(Some(4200)), Some(Duration::ZERO));
        assert_eq!(after_close(Some(4299)), Some(Duration::ZERO));
        assert_eq!(after_close(Some(4000)), Some(Duration::ZERO));
        assert_eq!(after_close(Some(4100)), Some(RETRY_AFTER_CLOSE));
        assert_eq!(after_close(Some(1006)), Some(RETRY_AFTER_CLOSE));
        assert_eq!(after_close(Some(1001)), Some(RETRY_AFTER_CLOSE));
        assert_eq!(after_close(None), Some(RETRY_AFTER_CLOSE));
        assert_eq!(after_close(Some(4001)), None);
        assert_eq!(after_close(Some(4099)), None);
        assert_eq!(after_close(Some(4300)), None);
        assert!(is_hint(Some(4200)) && !is_hint(Some(4100)) && !is_hint(None));
    }
}
