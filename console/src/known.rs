//! The nodes the console has seen: what lets it keep watching a cluster while its
//! registry (Redis) is unreachable.
//!
//! Every good registry read updates [`KnownNodes`]; when Redis stops answering, the
//! collector polls each known node's `/admin/stats` directly. `rtc top` keeps the set in
//! memory; one-shot commands (`rtc status`, `rtc drain`) also keep it in a small cache
//! file per Redis URL and cluster ([`cache_path`]), so a run during an outage still
//! knows what an earlier run saw. The file also carries each node's last boot id and
//! pub/sub buffer sample, so a restart or a growing buffer between two runs is noticed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Version of the cache file; a file of another version is ignored.
const CACHE_VERSION: u32 = 1;
/// A node not seen in the registry for this long is forgotten (seconds).
pub const FORGET_AFTER_SECS: u64 = 24 * 3600;

/// One node as last seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KnownNode {
    /// Admin base URL (`advertise_url`), when the node reported one.
    pub url: Option<String>,
    /// Boot id of the process last seen.
    pub boot_id: String,
    /// Its uptime then, seconds.
    pub uptime_secs: u64,
    /// When it was last seen with stats, unix ms (console clock).
    pub seen_ms: u64,
    /// Its subscriber's output buffer in Redis then (bytes) and when (unix ms).
    pub buffer: Option<(u64, u64)>,
    /// When a restart of this node was last noticed (unix ms), with the boot id before it.
    pub restarted: Option<(u64, String)>,
}

/// The set of nodes seen in one cluster, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KnownNodes {
    version: u32,
    /// Known nodes by id.
    pub nodes: BTreeMap<String, KnownNode>,
}

impl KnownNodes {
    /// Reads the cache file; an absent, unreadable or foreign file gives an empty set.
    pub fn load(path: &Path) -> KnownNodes {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<KnownNodes>(&b).ok())
            .filter(|k| k.version == CACHE_VERSION)
            .unwrap_or_default()
    }

    /// Writes the cache file (a temporary file renamed into place). Best effort: a
    /// console that cannot write its cache still works.
    pub fn save(&self, path: &Path) {
        let doc = KnownNodes { version: CACHE_VERSION, nodes: self.nodes.clone() };
        let Ok(bytes) = serde_json::to_vec_pretty(&doc) else { return };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, bytes).is_ok() && std::fs::rename(&tmp, path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    /// Drops nodes not seen for [`FORGET_AFTER_SECS`].
    pub fn forget_old(&mut self, now_ms: u64) {
        self.nodes.retain(|_, n| now_ms.saturating_sub(n.seen_ms) < FORGET_AFTER_SECS * 1000);
    }
}

/// The cache file for a Redis URL and cluster: `$XDG_CACHE_HOME/rtc/` (else
/// `~/.cache/rtc/`), named by a hash of both, so the URL (which may hold a password)
/// is not written in the name. `None` when neither directory is known.
pub fn cache_path(redis_url: &str, cluster: &str) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache")))?;
    let safe: String =
        cluster.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    Some(base.join("rtc").join(format!("nodes-{safe}-{:016x}.json", fnv1a(&format!("{redis_url}\0{cluster}")))))
}

/// FNV-1a, 64 bits: a stable file-name hash (not a security measure).
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_foreign_files() {
        let dir = std::env::temp_dir().join(format!("rtc-known-{}", std::process::id()));
        let path = dir.join("nodes.json");
        let mut k = KnownNodes::default();
        k.nodes.insert(
            "node-1".into(),
            KnownNode {
                url: Some("http://127.0.0.1:1".into()),
                boot_id: "b1".into(),
                seen_ms: 5,
                ..KnownNode::default()
            },
        );
        k.save(&path);
        assert_eq!(KnownNodes::load(&path).nodes, k.nodes);
        std::fs::write(&path, "{\"version\": 99, \"nodes\": {}}").unwrap();
        assert!(KnownNodes::load(&path).nodes.is_empty());
        std::fs::write(&path, "not json").unwrap();
        assert!(KnownNodes::load(&path).nodes.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
        k.forget_old(FORGET_AFTER_SECS * 1000 + 10);
        assert!(k.nodes.is_empty());
    }

    #[test]
    fn cache_names_hide_the_url() {
        let p = cache_path("redis://:secret@db:6379", "prod/x").unwrap_or_default();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        assert!(name.starts_with("nodes-prod_x-") && !name.contains("secret"), "{name}");
        assert_ne!(cache_path("redis://a", "c"), cache_path("redis://b", "c"));
    }
}
