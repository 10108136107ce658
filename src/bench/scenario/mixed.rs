//! `rtc bench mixed`: the production mix of issue 6 (target 3): private channels of ~250
//! subscribers under a steady event rate, plus one presence channel under churn.

use crate::bench::args::{ChannelKind, CommonArgs, MixedArgs};
use crate::bench::book::{EventBook, PresenceBook};
use crate::bench::churn::{self, churn};
use crate::bench::publish::{publish, PublishPlan};
use crate::bench::report::Report;
use crate::bench::runner::Run;
use crate::bench::swarm::{channel_name, ChannelPlan, SocketPlan, PUSHER_JS_ACTIVITY_TIMEOUT};
use crate::bench::BenchError;

/// The presence channel's name.
const CHANNEL: &str = "presence-bench-mixed";

/// Ramps `--sockets` sockets (the first `--members` also join the presence channel),
/// then publishes and churns together for `--hold`, settles, reports.
///
/// # Errors
/// See [`Run::start`]; the HTTP client cannot be built.
pub(crate) async fn run(common: &CommonArgs, args: &MixedArgs) -> Result<Report, BenchError> {
    let sockets = args.sockets as usize;
    let channels = sockets.div_ceil(args.group as usize).max(1);
    let members = (args.members as usize).min(sockets);
    let spares = if members > 0 { churn::spares_for(args.churn).min(sockets - members) } else { 0 };
    let count = super::event_count(args.events_per_sec, common.hold);
    let parameters = serde_json::json!({
        "sockets": sockets,
        "private_channels": channels,
        "subscribers_per_channel": args.group,
        "events_per_sec": args.events_per_sec,
        "presence_members": members,
        "presence_spares": spares,
        "churn_per_sec": args.churn,
        "payload_bytes": args.payload,
        "rate": common.rate,
        "hold_s": common.hold.as_secs_f64(),
    });
    let presence = (members > 0).then(|| PresenceBook::new(CHANNEL.into(), members + spares));
    let book = EventBook::new(count, channels);
    let mut run = Run::start(common, "mixed", parameters, sockets, Some(book), presence).await?;
    let (roles, senders) = churn::roles(members, spares);
    let mut roles: Vec<_> = roles.into_iter().map(Some).collect();
    run.ramp(|index| SocketPlan {
        index,
        channel: Some(ChannelPlan {
            name: channel_name(ChannelKind::Private, "mixed", index % channels),
            kind: ChannelKind::Private,
            tracked: Some(index % channels),
        }),
        presence: roles.get_mut(index).and_then(Option::take),
        activity_timeout: Some(PUSHER_JS_ACTIVITY_TIMEOUT),
    })
    .await;
    if run.nobody_ready() {
        return run.finish(None, None).await;
    }
    let until = run.begin_steady("publish").await;
    let plan = PublishPlan {
        rate: args.events_per_sec,
        count,
        channels: (0..channels).map(|n| channel_name(ChannelKind::Private, "mixed", n)).collect(),
        payload: args.payload as usize,
    };
    let (published, churned) = tokio::join!(
        publish(&run.shared, &run.target, plan, until),
        churn(&run.shared, &senders, members, if members > 0 { args.churn } else { 0.0 }, until),
    );
    let published = published?;
    run.settle().await;
    run.end_steady();
    run.finish(Some(published), (members > 0).then_some(churned)).await
}
