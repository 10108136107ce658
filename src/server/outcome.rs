//! What the server does with what arrives from the cluster engine: the node's
//! [`Inbox`]. One handler per [`Outcome`] tells the local sockets, sends the webhooks
//! and tells the other nodes, whichever engine decided it. Standalone mode decides
//! inline (under the channel locks, see `app`) and shares the handlers that need no
//! lock ([`App::count_changed`], [`App::online_changed`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use rtc_model::NodeStats;

use super::app::App;
use super::health::NodeState;
use super::{stats, Frame, Node};
use crate::port::{AppState, BoxFuture, BusMessage, ClusterError, Departure, Inbox, Outcome};
use crate::protocol::channel::ChannelKind;
use crate::protocol::frame;
use crate::protocol::ChannelName;

impl App {
    /// A channel's subscriber count (cluster-wide in a cluster) changed and is due:
    /// `subscription_count` to the local subscribers, to the other nodes' (cluster
    /// mode), and the webhook (throttled).
    pub(crate) fn count_changed(&self, channel: &ChannelName, total: u64) {
        self.send_count_frame(channel, total);
        if self.config.subscription_count {
            self.publish_to_cluster(BusMessage::SubscriptionCount { channel: channel.to_string(), count: total });
        }
        self.webhooks().subscription_count(channel, total);
    }

    /// A user's first signed-in socket (anywhere) arrived, or their last one left: the
    /// watchers here and on the other nodes are told (apps with the watchlist on).
    pub(crate) fn online_changed(&self, user_id: &str, online: bool) {
        if !self.config.watchlist {
            return;
        }
        self.notify_watchers(user_id, online);
        self.publish_to_cluster(BusMessage::Watchlist { user_id: user_id.to_string(), online });
    }
}

impl Node {
    fn publish_to_cluster(&self, app: &str, msg: BusMessage) {
        if let Some(c) = &self.cluster {
            c.publish(app, msg);
        }
    }

    /// Acts on one outcome of the engine.
    async fn handle(&self, outcome: Outcome) {
        match outcome {
            Outcome::MemberList { app, channel, socket, members } => {
                let Some(app) = self.app_by_id(&app) else { return };
                let Some(conn) = app.socket(socket) else { return };
                if !app.is_subscribed(&channel, socket) {
                    return;
                }
                let members = members.unwrap_or_else(|| app.local_members(&channel));
                app.send_presence_list(&channel, &conn, &members);
            }
            Outcome::PresenceRefused { app, channel, user_id, socket } => {
                let Some(app) = self.app_by_id(&app) else { return };
                if let Some(conn) = app.socket(socket) {
                    app.refuse_presence(&conn, &channel, &user_id);
                }
            }
            Outcome::MemberAdded { app: id, channel, user_id, info, except } => {
                if let Some(app) = self.app_by_id(&id) {
                    app.webhooks().member_added_shared(&channel, &user_id).await;
                    app.fan_out_member_added(&channel, &user_id, &info, except);
                }
                let msg = BusMessage::MemberAdded { channel: channel.to_string(), user_id, user_info: info };
                self.publish_to_cluster(&id, msg);
            }
            Outcome::MemberRemoved { app: id, channel, user_id } => {
                if let Some(app) = self.app_by_id(&id) {
                    app.webhooks().member_removed_shared(&channel, &user_id).await;
                    app.fan_out_member_removed(&channel, &user_id);
                }
                self.publish_to_cluster(&id, BusMessage::MemberRemoved { channel: channel.to_string(), user_id });
            }
            Outcome::Occupancy { app, channel, occupied } => {
                let Some(app) = self.app_by_id(&app) else { return };
                if channel.kind() == ChannelKind::ServerToUser {
                    return;
                }
                if occupied {
                    app.webhooks().channel_occupied_shared(&channel).await;
                } else {
                    app.webhooks().channel_vacated_shared(&channel).await;
                }
            }
            Outcome::SubscriptionCount { app, channel, total } => {
                if let Some(app) = self.app_by_id(&app) {
                    app.count_changed(&channel, total);
                }
            }
            Outcome::CacheReplay { app, channel, socket, cached } => {
                let Some(app) = self.app_by_id(&app) else { return };
                let Some(conn) = app.socket(socket) else { return };
                let stored = cached.unwrap_or_else(|| app.cached(&channel).map(|c| (c.event, c.data)));
                let f = match stored {
                    Some((event, data)) => frame::event_frame(&event, Some(channel.as_str()), Some(&data), None),
                    None => {
                        app.webhooks().cache_miss(&channel);
                        frame::cache_miss(channel.as_str())
                    }
                };
                self.metrics.frames_out.inc();
                app.send_to_subscriber(&channel, &conn, Frame::from(f));
            }
            Outcome::Online { app, user_id, online } => {
                if let Some(app) = self.app_by_id(&app) {
                    app.online_changed(&user_id, online);
                }
            }
            Outcome::WatchStatus { app, socket, ids, online } => {
                let Some(app) = self.app_by_id(&app) else { return };
                let Some(conn) = app.socket(socket) else { return };
                let online = online.unwrap_or_else(|| ids.iter().map(|id| app.is_signed_in_locally(id)).collect());
                let mut on = Vec::new();
                let mut off = Vec::new();
                for (id, o) in ids.iter().zip(online.iter()) {
                    if *o {
                        on.push(id.as_str());
                    } else {
                        off.push(id.as_str());
                    }
                }
                self.metrics.frames_out.inc();
                conn.push(Frame::from(frame::watchlist_events(&on, &off)));
            }
        }
    }
}

impl Inbox for Node {
    fn deliver(&self, app: &str, msg: BusMessage, arrival: std::time::Instant) {
        let Some(app) = self.app_by_id(app) else { return };
        let channel = |name: &str| ChannelName::parse(name).ok();
        match msg {
            BusMessage::Event { channel: c, event, data, except, user_id } => {
                if let Some(c) = channel(&c) {
                    let except = except.and_then(|s| s.parse().ok());
                    app.deliver_local(&c, &event, &data, except, user_id.as_deref(), arrival);
                }
            }
            BusMessage::MemberAdded { channel: c, user_id, user_info } => {
                if let Some(c) = channel(&c) {
                    app.fan_out_member_added(&c, &user_id, &user_info, None);
                }
            }
            BusMessage::MemberRemoved { channel: c, user_id } => {
                if let Some(c) = channel(&c) {
                    app.fan_out_member_removed(&c, &user_id);
                }
            }
            BusMessage::SubscriptionCount { channel: c, count } => {
                if let Some(c) = channel(&c) {
                    app.send_count_frame(&c, count);
                }
            }
            BusMessage::Terminate { user_id } => {
                app.terminate_user_local(&user_id);
            }
            BusMessage::Watchlist { user_id, online } => app.notify_watchers(&user_id, online),
        }
    }

    fn outcome(&self, outcome: Outcome) -> BoxFuture<'_, ()> {
        Box::pin(self.handle(outcome))
    }

    fn snapshot(&self) -> Vec<AppState> {
        self.apps()
            .map(|app: &Arc<App>| AppState {
                id: app.config.id.clone(),
                occupancy: app.webhooks().wants_occupancy(),
                channel_counts: app.local_channel_counts(),
                presence: app.local_presence(),
                online: app.local_online_users(),
            })
            .collect()
    }

    fn node_stats(&self) -> NodeStats {
        stats::snapshot(self)
    }

    fn departure(&self) -> Departure {
        let drained = self.health.state() == NodeState::Draining;
        let detail = self.drain.lock().as_ref().map(|p| {
            let (hints, forced) = (p.hints.load(Ordering::Relaxed), p.forced.load(Ordering::Relaxed));
            format!("{} sockets at the start, {hints} reconnect hints, {forced} closed at the deadline", p.at_start)
        });
        Departure { drained, detail }
    }

    fn fatal(&self, error: ClusterError) {
        *self.fatal.lock() = Some(error);
        self.shutdown.cancel();
    }
}
