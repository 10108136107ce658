//! The JetStream key-value buckets of one cluster and the few operations the engine
//! builds on them: compare-and-set of a JSON value with retry ([`cas`]), key listing
//! by prefix ([`Buckets::keys`]), claims with an expiry.
//!
//! Buckets (`rtc_{cluster hex}_{what}`, in memory, one revision kept per key):
//! * `state`: presence members, subscriber counts, signed-in users, cache channels and
//!   the set of nodes ever registered (the reaper's list), no expiry;
//! * `reg`: registry entries (`n.{node}`) and node-id locks (`l.{node}`), `max_age` =
//!   the node TTL, so what a node stops rewriting disappears;
//! * `once`: claims (webhook departures) and reap markers, `max_age` one hour (every
//!   claim also carries its own expiry, checked by readers).

use std::time::Duration;

use async_nats::jetstream::kv::{Operation, Store};
use async_nats::jetstream::stream::{Config as StreamConfig, DiscardPolicy, StorageType};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{token, NATS_TIMEOUT};

/// Compare-and-set attempts before an update gives up (each conflict means another
/// node changed the key in between; each retry reads its change).
const CAS_ATTEMPTS: usize = 64;
/// How long a claim or reap marker can live at most.
const ONCE_MAX_AGE: Duration = Duration::from_secs(3600);

/// Why a key-value operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// NATS did not answer, or answered with an error.
    #[error("NATS key-value: {0}")]
    Nats(String),
    /// Too many concurrent changes of one key.
    #[error("NATS key-value: key '{0}' kept changing")]
    Contended(String),
}

fn err(e: impl std::fmt::Display) -> KvError {
    KvError::Nats(e.to_string())
}

/// Runs a NATS request with [`NATS_TIMEOUT`].
pub async fn timed<T, E: std::fmt::Display>(f: impl std::future::Future<Output = Result<T, E>>) -> Result<T, KvError> {
    match tokio::time::timeout(NATS_TIMEOUT, f).await {
        Ok(r) => r.map_err(err),
        Err(_) => Err(KvError::Nats("timed out".into())),
    }
}

/// The buckets of one cluster.
#[derive(Clone)]
pub struct Buckets {
    /// The JetStream context (deletes are published through it, see [`cas`]).
    pub js: async_nats::jetstream::Context,
    /// Shared state.
    pub state: Store,
    /// Registry and node-id locks.
    pub reg: Store,
    /// Claims and reap markers.
    pub once: Store,
}

impl Buckets {
    /// Opens the cluster's buckets, creating the missing ones.
    ///
    /// # Errors
    /// NATS is unreachable or has no JetStream.
    pub async fn open(js: &async_nats::jetstream::Context, cluster: &str, node_ttl: Duration) -> Result<Self, KvError> {
        let name = |what: &str| format!("rtc_{}_{what}", token(cluster));
        Ok(Buckets {
            js: js.clone(),
            state: bucket(js, name("state"), Duration::ZERO).await?,
            reg: bucket(js, name("reg"), node_ttl).await?,
            once: bucket(js, name("once"), ONCE_MAX_AGE).await?,
        })
    }

    /// Keys of `store` starting with `prefix` (a dot-separated key prefix, e.g.
    /// `pres.{app}`), deleted ones included (their entries read as absent).
    pub async fn keys(store: &Store, prefix: &str) -> Result<Vec<String>, KvError> {
        let filter = format!("{}{prefix}.>", store.prefix);
        let mut subjects = timed(store.stream.info_with_subjects(filter)).await?;
        let mut out = Vec::new();
        loop {
            match tokio::time::timeout(NATS_TIMEOUT, subjects.next()).await {
                Ok(Some(Ok((subject, _)))) => {
                    if let Some(key) = subject.strip_prefix(store.prefix.as_str()) {
                        out.push(key.to_string());
                    }
                }
                Ok(Some(Err(e))) => return Err(err(e)),
                Ok(None) => return Ok(out),
                Err(_) => return Err(KvError::Nats("timed out listing keys".into())),
            }
        }
    }

    /// Sets claim `name` until `ttl` from now.
    pub async fn claim(&self, name: &str, ttl: Duration) -> Result<(), KvError> {
        let until = rtc_model::unix_ms() + ttl.as_millis() as u64;
        timed(self.once.put(format!("c.{}", token(name)), Bytes::from(until.to_string()))).await.map(|_| ())
    }

    /// Takes claim `name`: true if it was set and unexpired (only one taker wins).
    pub async fn take(&self, name: &str) -> Result<bool, KvError> {
        let key = format!("c.{}", token(name));
        let Some(entry) = timed(self.once.entry(key.clone())).await? else { return Ok(false) };
        if entry.operation != Operation::Put {
            return Ok(false);
        }
        let until: u64 = std::str::from_utf8(&entry.value).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
        if until <= rtc_model::unix_ms() {
            return Ok(false);
        }
        // Whoever deletes this revision took it; a conflict means another node did.
        match timed(self.once.delete_expect_revision(key, Some(entry.revision))).await {
            Ok(()) => Ok(true),
            Err(_) => Ok(false),
        }
    }

    /// Creates `key` in the once bucket: true for the one caller that created it.
    pub async fn create_once(&self, key: &str) -> Result<bool, KvError> {
        match tokio::time::timeout(NATS_TIMEOUT, self.once.create(key, Bytes::from_static(b"1"))).await {
            Ok(Ok(_)) => Ok(true),
            Ok(Err(e)) if e.kind() == async_nats::jetstream::kv::CreateErrorKind::AlreadyExists => Ok(false),
            Ok(Err(e)) => Err(err(e)),
            Err(_) => Err(KvError::Nats("timed out".into())),
        }
    }

    /// Whether `key` is set in the once bucket.
    pub async fn once_exists(&self, key: &str) -> Result<bool, KvError> {
        Ok(timed(self.once.entry(key.to_string())).await?.is_some_and(|e| e.operation == Operation::Put))
    }
}

/// Opens bucket `name`, creating its stream if missing. The stream is made here, with
/// the key-value conventions (`KV_{name}`, subjects `$KV.{name}.>`, rollups, direct
/// gets), rather than by `create_key_value`, whose account-info query does not parse
/// nats-server 2.9's answer.
async fn bucket(js: &async_nats::jetstream::Context, name: String, max_age: Duration) -> Result<Store, KvError> {
    if let Ok(Ok(store)) = tokio::time::timeout(NATS_TIMEOUT, js.get_key_value(name.clone())).await {
        return Ok(store);
    }
    let config = StreamConfig {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age,
        storage: StorageType::Memory,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        num_replicas: 1,
        discard: DiscardPolicy::New,
        ..Default::default()
    };
    // Another node may create it in between: either way, open it.
    let _ = timed(js.get_or_create_stream(config)).await;
    timed(js.get_key_value(name)).await
}

/// Reads `key` as JSON `T` (absent, deleted or unreadable: `None`) with its revision
/// (`None`: the key never existed).
pub async fn read<T: DeserializeOwned>(store: &Store, key: &str) -> Result<(Option<T>, Option<u64>), KvError> {
    match timed(store.entry(key.to_string())).await? {
        None => Ok((None, None)),
        Some(e) if e.operation != Operation::Put => Ok((None, Some(e.revision))),
        Some(e) => Ok((serde_json::from_slice(&e.value).ok(), Some(e.revision))),
    }
}

/// Applies `f` to the JSON value of `key` (default when absent) and writes it back if
/// nobody changed the key in between, retrying on a conflict; an empty value (`is_empty`)
/// deletes the key ([`delete`]). Returns what `f` returned on the attempt that was
/// written.
///
/// # Errors
/// NATS failed, or the key kept changing for [`CAS_ATTEMPTS`] attempts.
pub async fn cas<T, R>(
    js: &async_nats::jetstream::Context,
    store: &Store,
    key: &str,
    is_empty: impl Fn(&T) -> bool,
    mut f: impl FnMut(&mut T) -> R,
) -> Result<R, KvError>
where
    T: Serialize + DeserializeOwned + Default + PartialEq + Clone,
{
    for _ in 0..CAS_ATTEMPTS {
        let (value, revision) = read::<T>(store, key).await?;
        let existed = value.is_some();
        let before = value.unwrap_or_default();
        let mut value = before.clone();
        let r = f(&mut value);
        if value == before && (existed || is_empty(&value)) {
            return Ok(r);
        }
        let written = if is_empty(&value) {
            match revision {
                Some(rev) if existed => delete(js, store, key, rev).await,
                _ => Ok(()),
            }
        } else {
            let bytes = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
            let r = tokio::time::timeout(NATS_TIMEOUT, store.update(key, bytes, revision.unwrap_or(0)))
                .await
                .map_err(|_| KvError::Nats("timed out".into()))?;
            r.map(|_| ())
                .map_err(|e| (e.kind() == async_nats::jetstream::kv::UpdateErrorKind::WrongLastRevision, err(e)))
        };
        match written {
            Ok(()) => return Ok(r),
            Err((true, _)) => continue,
            Err((false, e)) => return Err(e),
        }
    }
    Err(KvError::Contended(key.to_string()))
}

/// Deletes `key` if its revision is still `rev`, leaving nothing behind: the delete
/// marker is published here (to learn its sequence) and then purged up to and including
/// that sequence, so a key per channel or user that comes and goes does not leave a
/// marker per name in the server's memory for ever; a value written after the marker
/// is kept. `Err((true, _))`: the key changed meanwhile.
async fn delete(
    js: &async_nats::jetstream::Context,
    store: &Store,
    key: &str,
    rev: u64,
) -> Result<(), (bool, KvError)> {
    let subject = format!("{}{key}", store.prefix);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("KV-Operation", "DEL");
    headers.insert(async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, rev.to_string().as_str());
    let published = async {
        let ack = js.publish_with_headers(subject.clone(), headers, Bytes::new()).await?;
        ack.await
    };
    let seq = match tokio::time::timeout(NATS_TIMEOUT, published).await {
        Ok(Ok(ack)) => ack.sequence,
        Ok(Err(e)) => {
            let conflict = e.kind() == async_nats::jetstream::context::PublishErrorKind::WrongLastSequence;
            return Err((conflict, err(e)));
        }
        Err(_) => return Err((false, KvError::Nats("timed out".into()))),
    };
    // Best effort: a marker left behind only costs memory, never correctness.
    let _ = tokio::time::timeout(NATS_TIMEOUT, store.stream.purge().filter(subject).sequence(seq + 1)).await;
    Ok(())
}
