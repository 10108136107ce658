//! The cluster engine URL (`rtc serve --bus URL`, and the console's `--bus URL`): which
//! engine its scheme names and the pure checks of its shape. Shared by the server and
//! the console so both accept exactly the same URLs.

/// Which engine joins the nodes of a cluster, by the scheme of its URL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// One Redis (`redis://`, `rediss://`, `unix://`; also `--redis-url` and Reverb's
    /// `REVERB_SCALING_ENABLED` + `REDIS_*`).
    #[default]
    Redis,
    /// A Redis Cluster (`redis-cluster://HOST:PORT[,HOST:PORT…]`): sharded pub/sub.
    RedisCluster,
    /// NATS with JetStream (`nats://HOST:PORT`).
    Nats,
}

impl Engine {
    /// The engine a URL names, by its scheme.
    pub fn of_url(url: &str) -> Option<Engine> {
        let scheme = url.split_once("://")?.0;
        match scheme {
            "redis" | "rediss" | "unix" => Some(Engine::Redis),
            "redis-cluster" => Some(Engine::RedisCluster),
            "nats" => Some(Engine::Nats),
            _ => None,
        }
    }

    /// The engine's name in logs, `rtc status` and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Redis => "redis",
            Engine::RedisCluster => "redis-cluster",
            Engine::Nats => "nats",
        }
    }
}

/// The `HOST:PORT` list of a `redis-cluster://` or `nats://` URL (the part after the
/// scheme and any `user:pass@`, split at commas), or `None` when it is empty or an entry
/// is not `HOST:PORT` with a non-empty host and a port number.
pub fn host_ports(url: &str) -> Option<Vec<&str>> {
    let rest = url.split_once("://")?.1;
    let hosts = rest.rsplit_once('@').map_or(rest, |(_, h)| h).trim_end_matches('/');
    if hosts.is_empty() {
        return None;
    }
    let list: Vec<&str> = hosts.split(',').map(str::trim).collect();
    let ok = list.iter().all(|hp| {
        matches!(hp.rsplit_once(':'), Some((h, p)) if !h.is_empty() && !h.contains('/') && p.parse::<u16>().is_ok())
    });
    ok.then_some(list)
}

/// The `user:pass` of a URL (`scheme://user:pass@hosts`), if any.
pub fn credentials(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    rest.rsplit_once('@').map(|(c, _)| c)
}

/// Replaces the password of a URL (`redis://user:pass@host`) with `***`, for messages
/// and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{}:***@{}", &url[..s + 3], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// Checks an engine URL's scheme and, for `redis-cluster://` and `nats://`, its
/// `HOST:PORT` list (a `redis://` URL is left to the Redis client to parse).
///
/// # Errors
/// The reason, worded for the operator (password redacted).
pub fn check_url(url: &str) -> Result<Engine, String> {
    let Some(engine) = Engine::of_url(url) else {
        return Err(format!(
            "'{}' must start with redis://, rediss://, unix://, redis-cluster:// or nats://",
            redact_url(url)
        ));
    };
    if engine != Engine::Redis && host_ports(url).is_none() {
        return Err(format!("'{}' must name HOST:PORT[,HOST:PORT…]", redact_url(url)));
    }
    Ok(engine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_name_engines_and_host_lists_are_checked() {
        assert_eq!(check_url("redis://127.0.0.1:6379"), Ok(Engine::Redis));
        assert_eq!(check_url("unix:///tmp/r.sock"), Ok(Engine::Redis));
        assert_eq!(check_url("redis-cluster://a:7000,b:7001"), Ok(Engine::RedisCluster));
        assert_eq!(check_url("nats://u:p@127.0.0.1:4222"), Ok(Engine::Nats));
        assert!(check_url("kafka://h:1").unwrap_err().contains("must start with"));
        for bad in
            ["redis-cluster://", "redis-cluster://127.0.0.1", "nats://127.0.0.1:notaport", "redis-cluster://a:1,:2"]
        {
            assert!(check_url(bad).unwrap_err().contains("HOST:PORT"), "{bad}");
        }
        assert_eq!(host_ports("redis-cluster://u:pw@a:1, b:2/"), Some(vec!["a:1", "b:2"]));
        assert_eq!(credentials("redis-cluster://u:pw@a:1"), Some("u:pw"));
        assert_eq!(credentials("nats://a:1"), None);
        assert_eq!(redact_url("nats://u:secret@h:4222"), "nats://u:***@h:4222");
        assert_eq!(Engine::RedisCluster.as_str(), "redis-cluster");
    }
}
