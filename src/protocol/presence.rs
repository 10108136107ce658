//! Presence `channel_data`: the member identity a signed presence subscription carries.

/// A presence member as the subscription declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The user id in string form (pusher-js and Echo send strings or numbers).
    pub user_id: String,
    /// Raw JSON of `user_info` (`null` when absent).
    pub info: String,
}

/// Reads `channel_data` (`{"user_id": string or number, "user_info": any JSON}`) with the
/// app's limits on the id's length (characters) and the info's size (bytes). The error
/// is the message sent to the client with `pusher:subscription_error`.
///
/// # Errors
/// Not a JSON object, a missing/empty/non-scalar `user_id`, or a limit exceeded.
pub fn parse_channel_data(channel_data: &str, max_id: usize, max_info: usize) -> Result<Member, String> {
    let v: serde_json::Value =
        serde_json::from_str(channel_data).map_err(|_| "Invalid channel_data: not JSON".to_string())?;
    let obj = v.as_object().ok_or("Invalid channel_data: not a JSON object")?;
    let user_id = match obj.get("user_id") {
        Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => return Err("Invalid channel_data: 'user_id' must be a non-empty string or number".into()),
    };
    if user_id.chars().count() > max_id {
        return Err(format!("Invalid channel_data: user_id longer than {max_id} characters"));
    }
    let info = obj.get("user_info").map(|v| v.to_string()).unwrap_or_else(|| "null".into());
    if info.len() > max_info {
        return Err(format!("Invalid channel_data: user_info is {} bytes; the limit is {max_info}", info.len()));
    }
    Ok(Member { user_id, info })
}

#[cfg(test)]
mod tests {
    use super::parse_channel_data;

    #[test]
    fn channel_data_accepts_numbers_and_refuses_garbage() {
        let p = parse_channel_data(r#"{"user_id":10,"user_info":{"name":"a"}}"#, 128, 1024).unwrap();
        assert_eq!(p.user_id, "10");
        assert_eq!(p.info, r#"{"name":"a"}"#);
        let p = parse_channel_data(r#"{"user_id":"u"}"#, 128, 1024).unwrap();
        assert_eq!(p.info, "null");
        assert!(parse_channel_data("nope", 128, 1024).is_err());
        assert!(parse_channel_data("[]", 128, 1024).is_err());
        assert!(parse_channel_data(r#"{"user_info":{}}"#, 128, 1024).is_err());
        assert!(parse_channel_data(r#"{"user_id":""}"#, 128, 1024).is_err());
        assert!(parse_channel_data(&format!(r#"{{"user_id":"{}"}}"#, "x".repeat(129)), 128, 1024).is_err());
        assert!(
            parse_channel_data(&format!(r#"{{"user_id":"a","user_info":"{}"}}"#, "x".repeat(1100)), 128, 1024).is_err()
        );
    }
}
