//! HMAC-SHA256 signatures: channel and user authentication, signed HTTP API requests and
//! webhook bodies. Every comparison is constant time.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why an `auth` string was refused. The message never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not of the form `key:hexsignature`.
    #[error("Invalid auth format: expected '<app_key>:<hex signature>'")]
    Malformed,
    /// Signed with another app's key.
    #[error("Invalid key in auth: signed for another app")]
    WrongKey,
    /// The signature does not match.
    #[error("Invalid signature: Expected HMAC SHA256 hex digest of {signed}, but got {got}")]
    BadSignature {
        /// The string the server signed.
        signed: String,
        /// The signature the client sent (truncated).
        got: String,
    },
}

fn mac(secret: &str) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    #[allow(clippy::expect_used)]
    HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any size")
}

/// `hex(HMAC-SHA256(secret, message))`.
pub fn sign(secret: &str, message: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(message);
    hex::encode(m.finalize().into_bytes())
}

/// Checks a hex signature in constant time.
pub fn verify_hex(secret: &str, message: &[u8], signature_hex: &str) -> bool {
    let Ok(sig) = hex::decode(signature_hex.trim()) else {
        return false;
    };
    let mut m = mac(secret);
    m.update(message);
    m.verify_slice(&sig).is_ok()
}

/// The string signed for a private or presence subscription.
pub fn channel_string_to_sign(socket_id: &str, channel: &str, channel_data: Option<&str>) -> String {
    match channel_data {
        Some(data) => format!("{socket_id}:{channel}:{data}"),
        None => format!("{socket_id}:{channel}"),
    }
}

/// The string signed for `pusher:signin`.
pub fn user_string_to_sign(socket_id: &str, user_data: &str) -> String {
    format!("{socket_id}::user::{user_data}")
}

/// Verifies an `auth` value (`key:hexsig`) over `to_sign` for the app `key`/`secret`.
pub fn verify_auth(key: &str, secret: &str, auth: &str, to_sign: &str) -> Result<(), AuthError> {
    let (auth_key, sig) = auth.split_once(':').ok_or(AuthError::Malformed)?;
    if auth_key != key {
        return Err(AuthError::WrongKey);
    }
    if verify_hex(secret, to_sign.as_bytes(), sig) {
        Ok(())
    } else {
        Err(AuthError::BadSignature {
            signed: to_sign.chars().take(400).collect(),
            got: sig.chars().take(80).collect(),
        })
    }
}

/// `key:hexsig` for a subscription, as an app's auth endpoint would produce it.
pub fn auth_for(key: &str, secret: &str, to_sign: &str) -> String {
    format!("{key}:{}", sign(secret, to_sign.as_bytes()))
}

/// Hex MD5 of an HTTP body (`body_md5`).
pub fn body_md5(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

/// The string signed for an HTTP API request: `METHOD\nPATH\nk=v&k=v` with keys
/// lower-cased and sorted, `auth_signature` left out, values not URL-escaped.
pub fn request_string_to_sign(method: &str, path: &str, params: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, &str)> = params
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("auth_signature"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
        .collect();
    pairs.sort();
    let query = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    format!("{}\n{}\n{}", method.to_ascii_uppercase(), path, query)
}

/// Signs an HTTP API request: returns the query string to send (with `auth_signature`).
/// Used by `rtc bench` and tests.
pub fn sign_request(
    key: &str,
    secret: &str,
    method: &str,
    path: &str,
    body: &[u8],
    timestamp: u64,
    extra: &[(String, String)],
) -> String {
    let mut params: Vec<(String, String)> = vec![
        ("auth_key".into(), key.into()),
        ("auth_timestamp".into(), timestamp.to_string()),
        ("auth_version".into(), "1.0".into()),
    ];
    if !body.is_empty() {
        params.push(("body_md5".into(), body_md5(body)));
    }
    params.extend(extra.iter().cloned());
    let sig = sign(secret, request_string_to_sign(method, path, &params).as_bytes());
    params.push(("auth_signature".into(), sig));
    form_urlencoded::Serializer::new(String::new()).extend_pairs(params.iter()).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "278d425bdf160c739803";
    const SECRET: &str = "7ad3773142a6692b25b8";

    #[test]
    fn reference_vectors() {
        assert_eq!(
            sign(SECRET, b"1234.1234:private-foobar"),
            "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
        );
        assert_eq!(
            sign(SECRET, br#"1234.1234::user::{"id":"12345"}"#),
            "4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba"
        );
        let presence = channel_string_to_sign(
            "1234.1234",
            "presence-foobar",
            Some(r#"{"user_id":10,"user_info":{"name":"Mr. Pusher"}}"#),
        );
        assert_eq!(
            sign(SECRET, presence.as_bytes()),
            "afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c"
        );
    }

    #[test]
    fn verify_auth_accepts_and_refuses() {
        let s = channel_string_to_sign("1234.1234", "private-foobar", None);
        let good = auth_for(KEY, SECRET, &s);
        assert_eq!(verify_auth(KEY, SECRET, &good, &s), Ok(()));
        assert_eq!(verify_auth(KEY, SECRET, "nocolon", &s), Err(AuthError::Malformed));
        assert_eq!(verify_auth("other", SECRET, &good, &s), Err(AuthError::WrongKey));
        let other_socket = channel_string_to_sign("1234.1235", "private-foobar", None);
        assert!(matches!(verify_auth(KEY, SECRET, &good, &other_socket), Err(AuthError::BadSignature { .. })));
        assert!(verify_auth(KEY, SECRET, &format!("{KEY}:zz"), &s).is_err());
    }

    #[test]
    fn request_signature_vector() {
        let body = br#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
        assert_eq!(body_md5(body), "ec365a775a4cd0599faeb73354201b6f");
        let params = vec![
            ("auth_key".to_string(), KEY.to_string()),
            ("auth_timestamp".to_string(), "1353088179".to_string()),
            ("auth_version".to_string(), "1.0".to_string()),
            ("body_md5".to_string(), body_md5(body)),
        ];
        let s = request_string_to_sign("POST", "/apps/3/events", &params);
        assert_eq!(
            s,
            "POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f"
        );
        assert_eq!(sign(SECRET, s.as_bytes()), "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c");
    }
}
