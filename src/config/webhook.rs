//! The webhook endpoints of an app as configured: their URLs and event kinds, and the
//! retry default. What is sent and how lives in `webhooks`; this is only what the
//! configuration resolves to.

use std::fmt;
use std::time::Duration;

use crate::protocol::webhook::KindSet;

/// Default of `webhook_retry_for`: how long a failed webhook is retried (Pusher: 5 min).
pub const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(300);
/// One configured endpoint of an app.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// Where events are POSTed (http or https).
    pub url: reqwest::Url,
    /// Which events it gets.
    pub events: KindSet,
}

impl fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a token: print its origin only.
        f.debug_struct("WebhookTarget").field("url", &shown_url(&self.url)).field("events", &self.events).finish()
    }
}

/// Why a webhook URL was refused (config).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not a URL.
    #[error("'{0}' is not a URL: {1}")]
    Invalid(String, String),
    /// Not http or https, or no host.
    #[error("'{0}' must be an http:// or https:// URL with a host")]
    Scheme(String),
}

/// Parses a webhook endpoint URL.
///
/// # Errors
/// Not a URL, not http(s), or without a host.
pub fn parse_url(raw: &str) -> Result<reqwest::Url, UrlError> {
    let raw = raw.trim();
    let url = reqwest::Url::parse(raw).map_err(|e| UrlError::Invalid(raw.to_string(), e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(UrlError::Scheme(raw.to_string()));
    }
    Ok(url)
}

/// The URL without credentials, path or query: safe to log.
pub fn shown_url(url: &reqwest::Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{}://{h}:{p}", url.scheme()),
        (Some(h), None) => format!("{}://{h}", url.scheme()),
        _ => url.scheme().to_string(),
    }
}
