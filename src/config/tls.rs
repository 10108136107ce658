//! The TLS files of `server.tls_cert` + `server.tls_key`, loaded into a rustls server
//! config while the configuration is resolved, so a bad file is a configuration error
//! before anything listens. The listener that uses it is `server::tls`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

use super::{Resolver, ServerSection};
use crate::cli::ServeArgs;

/// A certificate or key that cannot be used, naming the config field and the path.
/// Never holds key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFileError {
    /// `server.tls_cert` or `server.tls_key`.
    pub field: &'static str,
    /// What is wrong, with the path.
    pub message: String,
}

impl TlsFileError {
    fn cert(message: String) -> Self {
        TlsFileError { field: "server.tls_cert", message }
    }

    fn key(message: String) -> Self {
        TlsFileError { field: "server.tls_key", message }
    }
}

/// Describes a PEM parse error without quoting the file (it may be a private key).
fn pem_problem(e: &pem::Error) -> &'static str {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line",
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "a PEM section is not valid base64",
        pem::Error::SectionTooLarge => "a PEM section is too large",
        _ => "it is not valid PEM",
    }
}

/// Loads a PEM certificate chain (leaf first) and a PEM private key (PKCS#8, PKCS#1 or
/// SEC1) into a rustls server config with the ring provider and ALPN `http/1.1`.
///
/// # Errors
/// The first problem found: a file that cannot be read, no certificate or no private key
/// in the PEM, a key rustls cannot use, or a key that does not match the certificate.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsFileError> {
    let cert_pem =
        std::fs::read(cert).map_err(|e| TlsFileError::cert(format!("cannot read '{}': {e}", cert.display())))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsFileError::cert(format!("'{}': {}", cert.display(), pem_problem(&e))))?;
    if chain.is_empty() {
        return Err(TlsFileError::cert(format!(
            "'{}' holds no PEM certificate (expected a -----BEGIN CERTIFICATE----- section)",
            cert.display()
        )));
    }
    let key_pem = std::fs::read(key).map_err(|e| TlsFileError::key(format!("cannot read '{}': {e}", key.display())))?;
    let private_key = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(k) => k,
        Err(pem::Error::NoItemsFound) => {
            return Err(TlsFileError::key(format!(
                "'{}' holds no PEM private key (expected a -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY section)",
                key.display()
            )))
        }
        Err(e) => return Err(TlsFileError::key(format!("'{}': {}", key.display(), pem_problem(&e)))),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    if provider.key_provider.load_private_key(private_key.clone_key()).is_err() {
        return Err(TlsFileError::key(format!(
            "'{}' holds a private key rustls cannot use (RSA, ECDSA P-256/P-384 or Ed25519 expected)",
            key.display()
        )));
    }
    let builder = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsFileError::cert(format!("TLS setup failed: {e}")))?
        .with_no_client_auth();
    let mut config = builder.with_single_cert(chain, private_key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => {
            TlsFileError::key(format!("'{}' does not match the certificate in '{}'", key.display(), cert.display()))
        }
        other => TlsFileError::cert(format!("'{}' is not a usable certificate: {other}", cert.display())),
    })?;
    // HTTP/1.1 only: the WebSocket upgrade and the HTTP API are served over HTTP/1.1. A
    // client offering only other protocols gets no ALPN rather than a fatal alert (see
    // `AlpnAcceptor`).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// TLS on the listener: both PEM files, loaded and checked before anything listens.
#[derive(Clone)]
pub struct TlsConfig {
    /// The certificate chain file (leaf first).
    pub cert: PathBuf,
    /// The private key file.
    pub key: PathBuf,
    /// The rustls server config built from them (ring provider, ALPN `http/1.1`).
    pub server_config: Arc<tokio_rustls::rustls::ServerConfig>,
}

impl fmt::Debug for TlsConfig {
    // The paths only: the server config holds the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig").field("cert", &self.cert).field("key", &self.key).finish_non_exhaustive()
    }
}

/// `server.tls_cert` and `server.tls_key`: both or neither; both files loaded now, so a
/// bad one is a config error (exit 2) rather than a failure at the first handshake.
pub(super) fn resolve_tls(r: &mut Resolver<'_>, args: &ServeArgs, s: &ServerSection) -> Option<TlsConfig> {
    let cert = args.tls_cert.clone().or_else(|| s.tls_cert.clone());
    let key = args.tls_key.clone().or_else(|| s.tls_key.clone());
    match (cert, key) {
        (None, None) => None,
        (Some(_), None) => {
            r.err(
                "server.tls_key",
                "is required when server.tls_cert is set (--tls-key, RTC_TLS_KEY); set both or neither",
            );
            None
        }
        (None, Some(_)) => {
            r.err(
                "server.tls_cert",
                "is required when server.tls_key is set (--tls-cert, RTC_TLS_CERT); set both or neither",
            );
            None
        }
        (Some(cert), Some(key)) => match server_config(&cert, &key) {
            Ok(server_config) => Some(TlsConfig { cert, key, server_config }),
            Err(e) => {
                r.err(e.field, e.message);
                None
            }
        },
    }
}
