//! `rtc bench presence`: one presence channel under join/leave churn.

use crate::bench::args::{CommonArgs, PresenceArgs};
use crate::bench::book::PresenceBook;
use crate::bench::churn::{self, churn};
use crate::bench::report::Report;
use crate::bench::runner::Run;
use crate::bench::swarm::{SocketPlan, PUSHER_JS_ACTIVITY_TIMEOUT};
use crate::bench::BenchError;

/// The presence channel's name.
const CHANNEL: &str = "presence-bench-room";

/// Joins `--members` members (plus spares), churns for `--hold`, settles, reports.
///
/// # Errors
/// See [`Run::start`].
pub(crate) async fn run(common: &CommonArgs, args: &PresenceArgs) -> Result<Report, BenchError> {
    let members = args.members as usize;
    let spares = churn::spares_for(args.churn);
    let parameters = serde_json::json!({
        "members": members,
        "spares": spares,
        "churn_per_sec": args.churn,
        "rate": common.rate,
        "hold_s": common.hold.as_secs_f64(),
    });
    let book = PresenceBook::new(CHANNEL.into(), members + spares);
    let mut run = Run::start(common, "presence", parameters, members + spares, None, Some(book)).await?;
    let (roles, senders) = churn::roles(members, spares);
    let mut roles: Vec<_> = roles.into_iter().map(Some).collect();
    run.ramp(|index| SocketPlan {
        index,
        channel: None,
        presence: roles.get_mut(index).and_then(Option::take),
        activity_timeout: Some(PUSHER_JS_ACTIVITY_TIMEOUT),
    })
    .await;
    if run.nobody_ready() {
        return run.finish(None, None).await;
    }
    let until = run.begin_steady("churn").await;
    let outcome = churn(&run.shared, &senders, members, args.churn, until).await;
    run.settle().await;
    run.end_steady();
    run.finish(None, Some(outcome)).await
}
