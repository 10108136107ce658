//! Pusher-compatible webhooks: per app, POSTs of `{"time_ms": …, "events": […]}` signed
//! with the app secret (`X-Pusher-Key`, `X-Pusher-Signature`) to each configured endpoint.
//!
//! * `event`: the kinds, their payloads, the body and its signature (pure).
//! * `delay`: the 3 s hold on `channel_vacated`/`member_removed` that swallows a quick
//!   leave-and-return pair (both the departure and the arrival are not sent).
//! * `throttle`: at most one `subscription_count` per channel per second, carrying the
//!   latest count.
//! * `delivery`: one bounded queue and one ordered sender per endpoint, batching,
//!   retries with capped backoff, the shutdown flush; member events have reserved room
//!   in the queue.
//!
//! The server calls [`Webhooks`] from the socket path: every call is non-blocking (a
//! short lock and a queue push); a full queue drops the event and counts it.
//!
//! Under subscribe/unsubscribe churn the delay and the throttle keep the output small:
//! a channel flipping between 0 and 1 subscriber sends its first `channel_occupied`,
//! one count per second at most, and its `channel_vacated` 3 s after the churn stops
//! (if it ends empty); cancelled departures leave the delay queue at once.
//!
//! In a cluster each event is sent by one node only: the node whose change takes the
//! cluster-wide state across the edge (first/last member anywhere from the presence
//! scripts, first/last subscriber anywhere from the atomic count script in
//! `cluster::state`). The vacate delay is then a once-per-cluster claim through the
//! port ([`Claims`]; a Redis key `rtc:{cluster}:whpend:…` in the Redis engine): the
//! node that sees the return takes it, and the departing node sends only if the claim
//! is still there when the delay ends, so a member who moves to another node within
//! 3 s causes neither webhook.

mod delay;
mod delivery;
mod throttle;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::config::webhook::{parse_url, UrlError, WebhookTarget, DEFAULT_RETRY_FOR};
pub use delay::{DEPART_DELAY, MAX_PENDING};
pub use delivery::{
    PostError, PushError, BATCH_MAX, BATCH_WINDOW, DROP_LOG_EVERY, MEMBER_RESERVE, QUEUE, REQUEST_TIMEOUT, RETRY_SLOTS,
};
pub use event::{body, signature, KindSet, WebhookEvent, WebhookKind};
pub use throttle::{COUNT_WEBHOOK_EVERY, MAX_COUNT_WINDOWS};

use crate::config::AppConfig;
use crate::metrics::Metrics;
use crate::port::Claims;
use crate::protocol::webhook as event;
use crate::protocol::ChannelName;
use delay::{Claim, Delay, Due, Next, PendingKey};
use delivery::{Endpoint, Queue, QueueRx};
use throttle::{CountThrottle, Offer, Tick};

/// A `cache_miss` webhook per channel at most this often (more subscribers missing the
/// same empty cache do not each send one).
pub const CACHE_MISS_DEDUP: Duration = Duration::from_secs(10);
/// Channels remembered for the `cache_miss` dedup; past this, expired ones are pruned.
const MAX_MISS_ENTRIES: usize = 65_536;
/// How long a cluster-wide departure claim lives in Redis (the delay plus slack for a
/// slow Redis; a node that dies holding one simply never sends that departure).
const SHARED_CLAIM_TTL: Duration = Duration::from_secs(33);

struct Target {
    events: KindSet,
    tx: Queue,
    rx: Mutex<Option<QueueRx>>,
    endpoint: Arc<Endpoint>,
}

/// The webhooks of one app: what the server calls when something webhook-worthy
/// happens. An app without endpoints gets one that does nothing.
pub struct Webhooks {
    app_id: String,
    targets: Vec<Target>,
    wanted: KindSet,
    delay: Delay,
    counts: CountThrottle,
    misses: Mutex<HashMap<ChannelName, Instant>>,
    metrics: Arc<Metrics>,
    claims: Option<Arc<dyn Claims>>,
    stop: OnceLock<CancellationToken>,
}

impl Webhooks {
    /// The webhooks of `app` (nothing runs until [`Webhooks::start`]); `claims` makes
    /// the departure delay cluster-wide (cluster mode).
    pub fn new(app: &AppConfig, metrics: Arc<Metrics>, claims: Option<Arc<dyn Claims>>) -> Self {
        let http = if app.webhooks.is_empty() {
            None
        } else {
            reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .connect_timeout(REQUEST_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("rtc/", env!("CARGO_PKG_VERSION"), " webhooks"))
                .build()
                .map_err(|e| tracing::error!(app = %app.id, error = %e, "Webhook HTTP client unavailable; webhooks are off."))
                .ok()
        };
        let retry_for = Duration::from_secs(app.webhook_retry_for);
        let targets: Vec<Target> = match &http {
            None => Vec::new(),
            Some(http) => app
                .webhooks
                .iter()
                .map(|t| {
                    let (tx, rx) = delivery::queue();
                    let endpoint = Endpoint::new(
                        t.url.clone(),
                        http.clone(),
                        &app.key,
                        &app.secret,
                        app.webhook_batch,
                        retry_for,
                        metrics.clone(),
                    );
                    Target { events: t.events, tx, rx: Mutex::new(Some(rx)), endpoint: Arc::new(endpoint) }
                })
                .collect(),
        };
        let wanted = targets.iter().fold(KindSet::empty(), |s, t| s.union(t.events));
        Webhooks {
            app_id: app.id.clone(),
            targets,
            wanted,
            delay: Delay::default(),
            counts: CountThrottle::default(),
            misses: Mutex::new(HashMap::new()),
            metrics,
            claims,
            stop: OnceLock::new(),
        }
    }

    /// Starts the delivery tasks on the node's tracker; they stop with `stop` after a
    /// bounded flush. Idempotent.
    pub fn start(self: &Arc<Self>, tasks: &TaskTracker, stop: &CancellationToken) {
        if self.targets.is_empty() || self.stop.set(stop.clone()).is_err() {
            return;
        }
        for t in &self.targets {
            if let Some(rx) = t.rx.lock().take() {
                tasks.spawn(t.endpoint.clone().run(rx, tasks.clone(), stop.clone()));
            }
        }
        if self.wants_occupancy() || self.wants_members() {
            tasks.spawn(self.clone().run_delay(stop.clone()));
        }
        if self.wants(WebhookKind::SubscriptionCount) {
            tasks.spawn(self.clone().run_counts(stop.clone()));
        }
        tracing::info!(app = %self.app_id, endpoints = self.targets.len(), "Webhooks on.");
    }

    /// Whether any endpoint wants this kind.
    pub fn wants(&self, kind: WebhookKind) -> bool {
        self.wanted.contains(kind)
    }

    /// Whether `channel_occupied` or `channel_vacated` is wanted (the cluster then
    /// tracks cluster-wide occupancy for this app).
    pub fn wants_occupancy(&self) -> bool {
        self.wants(WebhookKind::ChannelOccupied) || self.wants(WebhookKind::ChannelVacated)
    }

    fn wants_members(&self) -> bool {
        self.wants(WebhookKind::MemberAdded) || self.wants(WebhookKind::MemberRemoved)
    }

    fn stopping(&self) -> bool {
        self.stop.get().is_some_and(CancellationToken::is_cancelled)
    }

    /// Queues an event for every endpoint that wants it; never waits.
    fn emit(&self, event: WebhookEvent) {
        let kind = event.name;
        let event = Arc::new(event);
        for t in self.targets.iter().filter(|t| t.events.contains(kind)) {
            match t.tx.push(event.clone()) {
                Ok(()) => {
                    self.metrics.webhook_events_queued.inc();
                }
                Err(PushError::Full) => t.endpoint.dropped("queue_full", 1),
                Err(PushError::Closed) => t.endpoint.dropped("shutdown", 1),
            }
        }
    }

    /// An arrival (occupied, added) on this node's own decision: swallowed together
    /// with a pending departure of the same key.
    fn arrive(&self, key: PendingKey, event: WebhookEvent) {
        if self.delay.cancel(&key).is_none() {
            self.emit(event);
        }
    }

    /// A departure (vacated, removed) held for [`DEPART_DELAY`].
    fn depart(&self, key: PendingKey, event: WebhookEvent, shared: Option<String>) {
        if self.stopping() {
            // The node is going away: nothing will be here to send it later.
            return self.emit(event);
        }
        if let Err(event) = self.delay.schedule(key, Box::new(event), Instant::now() + DEPART_DELAY, shared) {
            self.emit(*event);
        }
    }

    /// The name of a departure's cluster-wide claim.
    fn claim_name(&self, key: &PendingKey) -> String {
        format!("{}:{}", self.app_id, key.shared_suffix())
    }

    /// Arrival decided cluster-wide: swallowed if a departure is pending on this node or
    /// claimed by any node.
    async fn arrive_shared(&self, key: PendingKey, event: WebhookEvent) {
        match self.delay.cancel(&key) {
            Some(Claim::Local(_)) => return,
            Some(Claim::Shared(name)) => {
                // This node's own departure: out of the queue here, and the claim goes
                // too (best effort; it expires anyway).
                if let Some(claims) = &self.claims {
                    let _ = claims.take(name).await;
                }
                return;
            }
            None => {}
        }
        if let Some(claims) = &self.claims {
            if claims.take(self.claim_name(&key)).await == Some(true) {
                return;
            }
        }
        self.emit(event);
    }

    /// Departure decided cluster-wide: claimed so a return on any node cancels it; held
    /// locally when the claim cannot be recorded.
    async fn depart_shared(&self, key: PendingKey, event: WebhookEvent) {
        if self.stopping() {
            return self.emit(event);
        }
        let mut claim = None;
        if let Some(claims) = &self.claims {
            let name = self.claim_name(&key);
            if claims.claim(name.clone(), SHARED_CLAIM_TTL).await {
                claim = Some(name);
            }
        }
        self.depart(key, event, claim);
    }

    /// Sends a departure that fell due, unless it was cancelled meanwhile.
    async fn fire(&self, due: Due) {
        let send = match &due.claim {
            Claim::Local(g) => self.delay.still_pending(&due.key, *g),
            // No answer: better a departure sent than lost.
            Claim::Shared(name) => match &self.claims {
                Some(claims) => claims.take(name.clone()).await.unwrap_or(true),
                None => true,
            },
        };
        if send {
            self.emit(*due.event);
        }
    }

    /// The departure timer: sends each held departure when it falls due; at shutdown
    /// sends what is left at once (bounded).
    async fn run_delay(self: Arc<Self>, stop: CancellationToken) {
        loop {
            match self.delay.next(Instant::now()) {
                Next::Due(d) => self.fire(d).await,
                Next::Wait(at) => tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = stop.cancelled() => break,
                },
                Next::Empty => tokio::select! {
                    () = self.delay.wake.notified() => {}
                    () = stop.cancelled() => break,
                },
            }
        }
        let deadline = Instant::now() + delivery::FLUSH_TIMEOUT;
        for d in self.delay.drain() {
            if Instant::now() < deadline {
                let _ = tokio::time::timeout_at(deadline, self.fire(d)).await;
                continue;
            }
            // Out of time for Redis: send what this node still holds.
            let send = match &d.claim {
                Claim::Local(g) => self.delay.still_pending(&d.key, *g),
                Claim::Shared(_) => true,
            };
            if send {
                self.emit(*d.event);
            }
        }
    }

    /// A channel got its first subscriber on this (single) node.
    pub fn channel_occupied(&self, channel: &ChannelName) {
        if self.wants_occupancy() {
            let ev = WebhookEvent::channel(WebhookKind::ChannelOccupied, channel.as_str());
            self.arrive(PendingKey::Channel(channel.clone()), ev);
        }
    }

    /// A channel lost its last subscriber on this (single) node.
    pub fn channel_vacated(&self, channel: &ChannelName) {
        if self.wants_occupancy() {
            let ev = WebhookEvent::channel(WebhookKind::ChannelVacated, channel.as_str());
            self.depart(PendingKey::Channel(channel.clone()), ev, None);
        }
    }

    /// A user's first socket joined a presence channel on this (single) node.
    pub fn member_added(&self, channel: &ChannelName, user_id: &str) {
        if self.wants_members() {
            let ev = WebhookEvent::member(WebhookKind::MemberAdded, channel.as_str(), user_id);
            self.arrive(PendingKey::Member(channel.clone(), user_id.to_string()), ev);
        }
    }

    /// A user's last socket left a presence channel on this (single) node.
    pub fn member_removed(&self, channel: &ChannelName, user_id: &str) {
        if self.wants_members() {
            let ev = WebhookEvent::member(WebhookKind::MemberRemoved, channel.as_str(), user_id);
            self.depart(PendingKey::Member(channel.clone(), user_id.to_string()), ev, None);
        }
    }

    /// Cluster: this node's change took the channel's cluster-wide count from 0.
    pub async fn channel_occupied_shared(&self, channel: &ChannelName) {
        if self.wants_occupancy() {
            let ev = WebhookEvent::channel(WebhookKind::ChannelOccupied, channel.as_str());
            self.arrive_shared(PendingKey::Channel(channel.clone()), ev).await;
        }
    }

    /// Cluster: this node's change (or a dead node's removal) took the channel's
    /// cluster-wide count to 0.
    pub async fn channel_vacated_shared(&self, channel: &ChannelName) {
        if self.wants_occupancy() {
            let ev = WebhookEvent::channel(WebhookKind::ChannelVacated, channel.as_str());
            self.depart_shared(PendingKey::Channel(channel.clone()), ev).await;
        }
    }

    /// Cluster: the join script found no other node with this member.
    pub async fn member_added_shared(&self, channel: &ChannelName, user_id: &str) {
        if self.wants_members() {
            let ev = WebhookEvent::member(WebhookKind::MemberAdded, channel.as_str(), user_id);
            self.arrive_shared(PendingKey::Member(channel.clone(), user_id.to_string()), ev).await;
        }
    }

    /// Cluster: the leave script (or the reaper) found no other node with this member.
    pub async fn member_removed_shared(&self, channel: &ChannelName, user_id: &str) {
        if self.wants_members() {
            let ev = WebhookEvent::member(WebhookKind::MemberRemoved, channel.as_str(), user_id);
            self.depart_shared(PendingKey::Member(channel.clone(), user_id.to_string()), ev).await;
        }
    }

    /// A client event was accepted; `user_id` is the sender's on presence channels.
    pub fn client_event(&self, channel: &ChannelName, event: &str, data: &str, socket_id: &str, user_id: Option<&str>) {
        if self.wants(WebhookKind::ClientEvent) {
            self.emit(WebhookEvent::client_event(channel.as_str(), event, data, socket_id, user_id));
        }
    }

    /// A subscriber found a cache channel empty (at most one webhook per channel per
    /// [`CACHE_MISS_DEDUP`]).
    pub fn cache_miss(&self, channel: &ChannelName) {
        if !self.wants(WebhookKind::CacheMiss) {
            return;
        }
        let now = Instant::now();
        {
            let mut seen = self.misses.lock();
            if seen.get(channel).is_some_and(|at| now.duration_since(*at) < CACHE_MISS_DEDUP) {
                return;
            }
            if seen.len() >= MAX_MISS_ENTRIES {
                seen.retain(|_, at| now.duration_since(*at) < CACHE_MISS_DEDUP);
                if seen.len() >= MAX_MISS_ENTRIES {
                    seen.clear();
                }
            }
            seen.insert(channel.clone(), now);
        }
        self.emit(WebhookEvent::channel(WebhookKind::CacheMiss, channel.as_str()));
    }

    /// A cache channel got an event: its next miss is reported at once.
    pub fn cache_filled(&self, channel: &ChannelName) {
        if self.wants(WebhookKind::CacheMiss) {
            self.misses.lock().remove(channel);
        }
    }

    /// A channel's subscriber count changed (cluster-wide in a cluster). Sent at once
    /// if the channel sent none in the last [`COUNT_WEBHOOK_EVERY`], else the latest
    /// count is sent when that window ends (if it changed and is not 0).
    pub fn subscription_count(&self, channel: &ChannelName, count: u64) {
        if !self.wants(WebhookKind::SubscriptionCount) {
            return;
        }
        if self.stopping() {
            if count > 0 {
                self.emit(WebhookEvent::subscription_count(channel.as_str(), count));
            }
            return;
        }
        match self.counts.offer(channel, count, Instant::now()) {
            Offer::Send(c) => self.emit(WebhookEvent::subscription_count(channel.as_str(), c)),
            Offer::Held => {}
            Offer::Full => {
                for t in self.targets.iter().filter(|t| t.events.contains(WebhookKind::SubscriptionCount)) {
                    t.endpoint.dropped("throttle_full", 1);
                }
            }
        }
    }

    /// The `subscription_count` timer: sends the latest count of each channel whose
    /// window ended with a change.
    async fn run_counts(self: Arc<Self>, stop: CancellationToken) {
        loop {
            match self.counts.tick(Instant::now()) {
                Tick::Ended(channel, Some(c)) => {
                    self.emit(WebhookEvent::subscription_count(channel.as_str(), c));
                }
                Tick::Ended(_, None) => {}
                Tick::Wait(at) => tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = stop.cancelled() => break,
                },
                Tick::Empty => tokio::select! {
                    () = self.counts.wake.notified() => {}
                    () = stop.cancelled() => break,
                },
            }
        }
    }
}
