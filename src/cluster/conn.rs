//! The command connection of either Redis engine: one Redis through a
//! [`ConnectionManager`], or a Redis Cluster through the cluster client, which follows
//! `MOVED`/`ASK` redirections and refreshes its slot map after a failover. Both
//! reconnect by themselves; the state, registry and query code runs unchanged on
//! either because [`Con`] is a [`ConnectionLike`].

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// A command connection to one Redis or to a Redis Cluster.
#[derive(Clone)]
pub enum Con {
    /// One Redis.
    Single(ConnectionManager),
    /// A Redis Cluster (every key of the cluster shares one hash tag, so scripts and
    /// pipelines stay in one slot; see [`super::Keys::hash_tagged`]).
    Cluster(ClusterConnection),
}

impl ConnectionLike for Con {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Con::Single(c) => c.req_packed_command(cmd),
            Con::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Con::Single(c) => c.req_packed_commands(cmd, offset, count),
            Con::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Con::Single(c) => c.get_db(),
            Con::Cluster(c) => c.get_db(),
        }
    }
}
