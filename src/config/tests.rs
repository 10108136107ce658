//! Tests of the configuration layers and their validation.

use super::*;
use crate::protocol::webhook::KindSet;
use crate::protocol::ClientEvents;

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn defaults_give_the_dev_app() {
    let c = resolve(&ServeArgs::default(), FileConfig::default(), &no_env).unwrap();
    // The development app's secret is public: loopback only by default.
    assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 8080));
    assert!(c.dev_app);
    assert_eq!(c.apps[0].key, DEV_APP_KEY);
    assert!(c.admin_token_generated);
    assert_eq!(c.edge, EdgeConfig::default());
    // A configured app listens on every interface unless a host is given.
    let args = ServeArgs {
        app_id: Some("1".into()),
        app_key: Some("k".into()),
        app_secret: Some("secret-123".into()),
        ..Default::default()
    };
    assert_eq!(resolve(&args, FileConfig::default(), &no_env).unwrap().host, "0.0.0.0");
    let args = ServeArgs { host: Some("0.0.0.0".into()), ..Default::default() };
    assert_eq!(resolve(&args, FileConfig::default(), &no_env).unwrap().host, "0.0.0.0");
}

#[test]
fn reverb_env_defines_the_app_and_server() {
    let env = |k: &str| -> Option<String> {
        Some(
            match k {
                "REVERB_APP_ID" => "42",
                "REVERB_APP_KEY" => "k",
                "REVERB_APP_SECRET" => "s3cr3t-value",
                "REVERB_SERVER_PORT" => "6001",
                "REVERB_SERVER_PATH" => "ws/",
                "REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM" => "none",
                "REVERB_APP_MAX_CONNECTIONS" => "7",
                _ => return None,
            }
            .to_string(),
        )
    };
    let c = resolve(&ServeArgs::default(), FileConfig::default(), &env).unwrap();
    assert!(!c.dev_app);
    assert_eq!(c.apps.len(), 1);
    assert_eq!(c.apps[0].id, "42");
    assert_eq!(c.apps[0].client_events, ClientEvents::Off);
    assert_eq!(c.apps[0].max_connections, 7);
    assert_eq!(c.port, 6001);
    assert_eq!(c.path, "/ws");
}

#[test]
fn flags_beat_env_beat_file() {
    let file = parse_file("[server]\nport = 1\nhost = \"1.1.1.1\"\n", "t").unwrap();
    let env = |k: &str| (k == "REVERB_SERVER_PORT").then(|| "2".to_string());
    let args = ServeArgs { host: Some("127.0.0.1".into()), ..Default::default() };
    let c = resolve(&args, file, &env).unwrap();
    assert_eq!(c.port, 2);
    assert_eq!(c.host, "127.0.0.1");
}

#[test]
fn bad_values_are_all_reported_with_their_fields() {
    let file = parse_file(
        "[[apps]]\nid = \"a b\"\nkey = \"k\"\nsecret = \"x\"\nactivity_timeout = 0\n[[apps]]\nkey = \"k2\"\n",
        "rtc.toml",
    )
    .unwrap();
    let env = |k: &str| (k == "REVERB_SERVER_PORT").then(|| "http".to_string());
    let e = resolve(&ServeArgs::default(), file, &env).unwrap_err();
    let text = e.to_string();
    for needle in [
        "apps[0].id",
        "apps[0].secret",
        "apps[0].activity_timeout",
        "apps[1].id",
        "apps[1].secret",
        "REVERB_SERVER_PORT",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

#[test]
fn reverb_scaling_env_switches_cluster_mode_on() {
    let env = |k: &str| -> Option<String> {
        Some(
            match k {
                "REVERB_SCALING_ENABLED" => "true",
                "REVERB_SCALING_CHANNEL" => "prod",
                "REDIS_HOST" => "10.1.2.3",
                "REDIS_PASSWORD" => "hunter2",
                _ => return None,
            }
            .to_string(),
        )
    };
    let c = resolve(&ServeArgs::default(), FileConfig::default(), &env).unwrap();
    let cl = c.cluster.expect("cluster mode");
    assert_eq!(cl.name, "prod");
    assert_eq!(cl.redis_url.expose(), "redis://:hunter2@10.1.2.3:6379/0");
    assert_eq!(cl.redis_url_redacted(), "redis://:***@10.1.2.3:6379/0");
    assert!(!format!("{cl:?}").contains("hunter2"));
    let c = resolve(&ServeArgs::default(), FileConfig::default(), &no_env).unwrap();
    assert!(c.cluster.is_none());
}

#[test]
fn webhooks_parse_from_the_file_with_errors_naming_the_field() {
    let file = parse_file(
        "[[apps]]\nid = \"1\"\nkey = \"k\"\nsecret = \"secretsecret\"\nwebhook_batch = false\nwebhook_retry_for = 60\n\
         webhooks = [{ url = \"https://hooks.example.com/p?token=sekrit-value\", events = [\"channel_occupied\", \"member_added\"] },\n\
         { url = \"http://127.0.0.1:9/all\" }]\n",
        "rtc.toml",
    )
    .unwrap();
    let c = resolve(&ServeArgs::default(), file, &no_env).unwrap();
    let app = &c.apps[0];
    assert!(!app.webhook_batch);
    assert_eq!(app.webhook_retry_for, 60);
    assert_eq!(app.webhooks.len(), 2);
    assert!(app.webhooks[0].events.contains(crate::protocol::webhook::WebhookKind::MemberAdded));
    assert!(!app.webhooks[0].events.contains(crate::protocol::webhook::WebhookKind::ClientEvent));
    assert_eq!(app.webhooks[1].events, KindSet::ALL);
    assert!(!format!("{c:?}").contains("sekrit"), "webhook URLs print their origin only");

    let file = parse_file(
        "[[apps]]\nid = \"1\"\nkey = \"k\"\nsecret = \"secretsecret\"\n\
         webhooks = [{ url = \"ftp://x\" }, { url = \"https://ok.example\", events = [\"channel_exploded\"] }, {}]\n",
        "rtc.toml",
    )
    .unwrap();
    let text = resolve(&ServeArgs::default(), file, &no_env).unwrap_err().to_string();
    for needle in [
        "apps[0].webhooks[0].url: 'ftp://x' must be an http:// or https:// URL",
        "apps[0].webhooks[1].events: 'channel_exploded' is not a webhook event",
        "apps[0].webhooks[2].url: is required",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    assert!(parse_file("[[apps]]\nwebhooks = [{ uri = \"x\" }]\n", "rtc.toml").is_err());
}

#[test]
fn webhook_env_names_apply_to_the_env_app() {
    let env = |k: &str| -> Option<String> {
        Some(
            match k {
                "REVERB_APP_ID" => "42",
                "REVERB_APP_KEY" => "k",
                "REVERB_APP_SECRET" => "s3cr3t-value",
                "RTC_APP_WEBHOOK_URL" => "http://127.0.0.1:9000/hooks",
                "RTC_APP_WEBHOOK_EVENTS" => "channel_occupied, channel_vacated",
                _ => return None,
            }
            .to_string(),
        )
    };
    let c = resolve(&ServeArgs::default(), FileConfig::default(), &env).unwrap();
    let hooks = &c.apps[0].webhooks;
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].url.as_str(), "http://127.0.0.1:9000/hooks");
    assert_eq!(hooks[0].events.kinds().count(), 2);

    let all = |k: &str| (k == "RTC_APP_WEBHOOK_URL").then(|| "https://h.example/x".to_string());
    let c = resolve(&ServeArgs::default(), FileConfig::default(), &all).unwrap();
    assert_eq!(c.apps[0].webhooks[0].events, KindSet::ALL, "the dev app, every event");

    let bad = |k: &str| -> Option<String> {
        match k {
            "RTC_APP_WEBHOOK_URL" => Some("not a url".into()),
            "RTC_APP_WEBHOOK_EVENTS" => Some("channel_occupied,nope".into()),
            _ => None,
        }
    };
    let text = resolve(&ServeArgs::default(), FileConfig::default(), &bad).unwrap_err().to_string();
    assert!(text.contains("env RTC_APP_WEBHOOK_URL: 'not a url' is not a URL"), "{text}");
    assert!(text.contains("env RTC_APP_WEBHOOK_EVENTS: 'nope' is not a webhook event"), "{text}");
    let orphan = |k: &str| (k == "RTC_APP_WEBHOOK_EVENTS").then(|| "cache_miss".to_string());
    let text = resolve(&ServeArgs::default(), FileConfig::default(), &orphan).unwrap_err().to_string();
    assert!(text.contains("RTC_APP_WEBHOOK_URL is not"), "{text}");
}

#[test]
fn tls_needs_both_files_and_reports_unreadable_ones_by_path() {
    let file = parse_file("[server]\ntls_key = \"k.pem\"\n", "rtc.toml").unwrap();
    let text = resolve(&ServeArgs::default(), file, &no_env).unwrap_err().to_string();
    assert!(text.contains("server.tls_cert: is required when server.tls_key is set"), "{text}");
    let args = ServeArgs {
        tls_cert: Some("/nonexistent/c.pem".into()),
        tls_key: Some("/nonexistent/k.pem".into()),
        ..Default::default()
    };
    let text = resolve(&args, FileConfig::default(), &no_env).unwrap_err().to_string();
    assert!(text.contains("server.tls_cert: cannot read '/nonexistent/c.pem'"), "{text}");
    let c = resolve(&ServeArgs::default(), FileConfig::default(), &no_env).unwrap();
    assert!(c.tls.is_none(), "plain TCP by default");
}

#[test]
fn the_cluster_secret_comes_from_flag_or_file_is_checked_and_never_printed() {
    let file =
        parse_file("[cluster]\nredis_url = \"redis://127.0.0.1:6379\"\nsecret = \"file-secret-0123456789\"\n", "t")
            .unwrap();
    let c = resolve(&ServeArgs::default(), file, &no_env).unwrap();
    let cluster = c.cluster.unwrap();
    assert_eq!(cluster.secret.as_ref().map(Secret::expose), Some("file-secret-0123456789"));
    assert!(!format!("{cluster:?}").contains("file-secret"), "{cluster:?}");
    let args = ServeArgs {
        redis_url: Some("redis://127.0.0.1:6379".into()),
        cluster_secret: Some("short".into()),
        ..ServeArgs::default()
    };
    let e = resolve(&args, FileConfig::default(), &no_env).unwrap_err();
    assert!(e.to_string().contains("cluster.secret"), "{e}");
    let args = ServeArgs { redis_url: Some("redis://127.0.0.1:6379".into()), ..ServeArgs::default() };
    assert_eq!(resolve(&args, FileConfig::default(), &no_env).unwrap().cluster.unwrap().secret, None);
}

#[test]
fn unknown_keys_are_refused() {
    let e = parse_file("[server]\nprot = 1\n", "rtc.toml").unwrap_err();
    assert!(e.to_string().contains("prot"), "{e}");
}

#[test]
fn origins_match_exact_and_wildcards() {
    let mut a = AppConfig::with_credentials("1", "k", "secretsecret");
    a.allowed_origins = vec!["https://app.example.com".into(), "*.example.org".into()];
    assert!(a.origin_allowed(Some("https://app.example.com")));
    assert!(a.origin_allowed(Some("https://x.example.org")));
    assert!(!a.origin_allowed(Some("https://evil.com")));
    assert!(!a.origin_allowed(Some("https://example.org.evil.com")));
    assert!(a.origin_allowed(None));
}

#[test]
fn origin_patterns_without_a_port_match_any_port_as_in_reverb() {
    let mut a = AppConfig::with_credentials("1", "k", "s");
    a.allowed_origins = vec!["127.0.0.1".into(), "*.example.com".into(), "localhost:3000".into()];
    assert!(a.origin_allowed(Some("http://127.0.0.1:8100")));
    assert!(a.origin_allowed(Some("http://127.0.0.1")));
    assert!(a.origin_allowed(Some("https://app.example.com:8443")));
    assert!(a.origin_allowed(Some("http://localhost:3000")));
    assert!(!a.origin_allowed(Some("http://localhost:3001")));
    assert!(!a.origin_allowed(Some("http://localhost")));
    assert!(!a.origin_allowed(Some("http://127.0.0.2:8100")));
    assert!(!a.origin_allowed(Some("https://example.com.evil.net")));
    a.allowed_origins = vec!["127.0.0.1:9999".into()];
    assert!(!a.origin_allowed(Some("http://127.0.0.1:8100")));
    assert!(a.origin_allowed(Some("http://127.0.0.1:9999")));
    a.allowed_origins = vec!["https://app.example.com".into(), "http://[::1]".into(), "example.org:443".into()];
    assert!(a.origin_allowed(Some("https://app.example.com:444")));
    assert!(!a.origin_allowed(Some("http://app.example.com")));
    assert!(a.origin_allowed(Some("http://[::1]:8080")));
    assert!(a.origin_allowed(Some("https://example.org")));
    assert!(!a.origin_allowed(Some("http://example.org")));
}

#[test]
fn bus_picks_the_engine_by_scheme_and_refuses_conflicts_and_bad_urls() {
    let with = |bus: &str, redis: Option<&str>| {
        let args = ServeArgs { bus: Some(bus.into()), redis_url: redis.map(str::to_string), ..ServeArgs::default() };
        resolve(&args, FileConfig::default(), &no_env)
    };
    let c = with("redis://127.0.0.1:6379", None).unwrap().cluster.unwrap();
    assert_eq!((c.engine, c.redis_url.expose()), (Engine::Redis, "redis://127.0.0.1:6379"));
    // The same URL twice is no conflict; two different ones are.
    assert!(with("redis://127.0.0.1:6379", Some("redis://127.0.0.1:6379")).is_ok());
    let errs = with("redis://127.0.0.1:6379", Some("redis://10.0.0.1:6379")).unwrap_err();
    assert!(errs.0.iter().any(|e| e.field == "cluster.bus" && e.message.contains("give one")), "{errs}");
    let errs = with("kafka://127.0.0.1:9092", None).unwrap_err();
    assert!(errs.0.iter().any(|e| e.field == "cluster.bus" && e.message.contains("must start with")), "{errs}");
    for bad in ["redis-cluster://", "redis-cluster://127.0.0.1", "nats://127.0.0.1:notaport", "redis-cluster://a:1,:2"]
    {
        let errs = with(bad, None).unwrap_err();
        assert!(errs.0.iter().any(|e| e.field == "cluster.bus" && e.message.contains("HOST:PORT")), "{bad}: {errs}");
    }
    let file = parse_file("[cluster]\nbus = \"redis://127.0.0.1:6380\"\n", "t").unwrap();
    let c = resolve(&ServeArgs::default(), file, &no_env).unwrap().cluster.unwrap();
    assert_eq!(c.redis_url.expose(), "redis://127.0.0.1:6380");
}
