//! Test harness: an in-process node on a free loopback port, a raw protocol client and
//! a signed HTTP API client. Every wait is bounded.

#![allow(dead_code)]

pub mod cluster;
pub mod engine;
pub mod nats;
pub mod process;
pub mod proxy;
pub mod redis_cluster;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rtc::cli::ServeArgs;
use rtc::config;
use rtc::protocol::auth;
use rtc::server::Node;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Default wait for anything the test expects to happen.
pub const WAIT: Duration = Duration::from_secs(5);

pub const APP_ID: &str = "100001";
pub const KEY: &str = "app-key";
pub const SECRET: &str = "app-secret";
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// Config with one app (extra TOML appended inside its [[apps]] table).
pub fn one_app(extra: &str) -> String {
    format!(
        "[server]\nadmin_token = \"{ADMIN_TOKEN}\"\n\n[[apps]]\nid = \"{APP_ID}\"\nkey = \"{KEY}\"\nsecret = \"{SECRET}\"\n{extra}\n"
    )
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub node: Arc<Node>,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start(toml: &str) -> TestServer {
        let file = config::parse_file(toml, "test.toml").expect("test config parses");
        let args = ServeArgs { host: Some("127.0.0.1".into()), port: Some(0), ..Default::default() };
        let cfg = config::resolve(&args, file, &|_| None).expect("test config resolves");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let node = Node::new(cfg);
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(rtc::serve::serve_node(listener, node.clone(), async move {
            let _ = rx.await;
        }));
        TestServer { addr, node, stop: Some(tx), handle: Some(handle) }
    }

    pub fn ws_url(&self, key: &str) -> String {
        format!("ws://{}/app/{key}?protocol=7&client=js&version=8.4.0&flash=false", self.addr)
    }

    pub async fn connect(&self) -> Client {
        Client::connect(&self.ws_url(KEY)).await
    }

    pub fn api(&self) -> Api {
        Api::new(self.addr, APP_ID, KEY, SECRET)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), h).await;
        }
    }
}

/// A raw Pusher-protocol client.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub socket_id: String,
}

/// What a client saw when waiting.
#[derive(Debug)]
pub enum Seen {
    Event(Value),
    Closed(Option<u16>),
}

impl Client {
    pub async fn connect(url: &str) -> Client {
        let mut c = Client::connect_raw(url).await;
        let hello = c.expect_event("pusher:connection_established").await;
        let data: Value = serde_json::from_str(hello["data"].as_str().expect("data is a string")).unwrap();
        c.socket_id = data["socket_id"].as_str().unwrap().to_string();
        assert!(data["activity_timeout"].as_u64().is_some());
        c
    }

    /// Connects without waiting for connection_established.
    pub async fn connect_raw(url: &str) -> Client {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect in time")
            .expect("connect");
        Client { ws, socket_id: String::new() }
    }

    pub async fn send_json(&mut self, v: Value) {
        self.ws.send(Message::Text(v.to_string().into())).await.unwrap();
    }

    pub async fn send_text(&mut self, s: &str) {
        self.ws.send(Message::Text(s.to_string().into())).await.unwrap();
    }

    pub async fn send_raw(&mut self, m: Message) {
        self.ws.send(m).await.unwrap();
    }

    /// Next event or close, within `within`; `None` on timeout.
    pub async fn next_within(&mut self, within: Duration) -> Option<Seen> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return None,
                Ok(None) => return Some(Seen::Closed(None)),
                Ok(Some(Err(_))) => return Some(Seen::Closed(None)),
                Ok(Some(Ok(m))) => m,
            };
            match msg {
                Message::Text(t) => {
                    return Some(Seen::Event(serde_json::from_str(t.as_str()).expect("server sends JSON")))
                }
                Message::Close(f) => return Some(Seen::Closed(f.map(|f| u16::from(f.code)))),
                _ => continue,
            }
        }
    }

    pub async fn next_event(&mut self) -> Value {
        match self.next_within(WAIT).await {
            Some(Seen::Event(v)) => v,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    /// Waits for an event with this name, skipping others.
    pub async fn expect_event(&mut self, name: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                Some(Seen::Event(v)) if v["event"] == name => return v,
                Some(Seen::Event(_)) => continue,
                other => panic!("waiting for {name}: got {other:?}"),
            }
        }
    }

    /// Waits for the close frame and returns its code.
    pub async fn expect_close(&mut self) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                Some(Seen::Closed(code)) => return code,
                Some(Seen::Event(_)) => continue,
                None => panic!("no close within {WAIT:?}"),
            }
        }
    }

    /// The next event must be a pusher:error; returns its decoded data.
    pub async fn expect_error(&mut self) -> Value {
        let e = self.expect_event("pusher:error").await;
        serde_json::from_str(e["data"].as_str().expect("error data is a string")).unwrap()
    }

    /// Sends a ping and waits for the pong: proves the socket is alive and that
    /// everything sent before it has been handled.
    pub async fn roundtrip(&mut self) -> Vec<Value> {
        self.send_json(json!({"event":"pusher:ping","data":{}})).await;
        let mut before = Vec::new();
        loop {
            let v = self.next_event().await;
            if v["event"] == "pusher:pong" {
                return before;
            }
            before.push(v);
        }
    }

    pub async fn subscribe(&mut self, channel: &str) -> Value {
        self.subscribe_with(channel, None, None).await;
        self.expect_event("pusher_internal:subscription_succeeded").await
    }

    pub async fn subscribe_with(&mut self, channel: &str, auth: Option<String>, channel_data: Option<String>) {
        let mut data = json!({ "channel": channel });
        if let Some(a) = auth {
            data["auth"] = json!(a);
        }
        if let Some(d) = channel_data {
            data["channel_data"] = json!(d);
        }
        self.send_json(json!({"event":"pusher:subscribe","data": data})).await;
    }

    pub async fn subscribe_private(&mut self, channel: &str) -> Value {
        let a = auth::auth_for(KEY, SECRET, &auth::channel_string_to_sign(&self.socket_id, channel, None));
        self.subscribe_with(channel, Some(a), None).await;
        self.expect_event("pusher_internal:subscription_succeeded").await
    }

    pub async fn subscribe_presence(&mut self, channel: &str, user_id: &str) -> Value {
        let data = json!({"user_id": user_id, "user_info": {"name": format!("user {user_id}")}}).to_string();
        let a = auth::auth_for(KEY, SECRET, &auth::channel_string_to_sign(&self.socket_id, channel, Some(&data)));
        self.subscribe_with(channel, Some(a), Some(data)).await;
        self.expect_event("pusher_internal:subscription_succeeded").await
    }

    pub async fn signin(&mut self, user_data: &str) -> Value {
        let a = auth::auth_for(KEY, SECRET, &auth::user_string_to_sign(&self.socket_id, user_data));
        self.send_json(json!({"event":"pusher:signin","data":{"auth": a, "user_data": user_data}})).await;
        self.expect_event("pusher:signin_success").await
    }

    /// Asserts nothing but the pong arrives in a ping round trip.
    pub async fn assert_quiet(&mut self) {
        let got = self.roundtrip().await;
        assert!(got.is_empty(), "expected nothing, got {got:?}");
    }
}

/// Decodes an event's double-encoded data.
pub fn data_of(v: &Value) -> Value {
    serde_json::from_str(v["data"].as_str().expect("data is a JSON string")).expect("data decodes")
}

/// A signed HTTP API client.
pub struct Api {
    base: String,
    app_id: String,
    key: String,
    secret: String,
    http: reqwest::Client,
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

impl Api {
    pub fn new(addr: SocketAddr, app_id: &str, key: &str, secret: &str) -> Api {
        Api {
            base: format!("http://{addr}"),
            app_id: app_id.into(),
            key: key.into(),
            secret: secret.into(),
            http: reqwest::Client::builder().timeout(WAIT).build().unwrap(),
        }
    }

    pub fn with_secret(mut self, s: &str) -> Api {
        self.secret = s.into();
        self
    }

    /// Sends a signed request; returns status and JSON body.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>, query: &[(&str, &str)]) -> (u16, Value) {
        self.call_at(method, path, body.map(|b| b.to_string()), query, now_secs()).await
    }

    pub async fn call_at(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
        query: &[(&str, &str)],
        ts: u64,
    ) -> (u16, Value) {
        let full = format!("/apps/{}{}", self.app_id, path);
        let body = body.unwrap_or_default();
        let extra: Vec<(String, String)> = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let qs = auth::sign_request(&self.key, &self.secret, method, &full, body.as_bytes(), ts, &extra);
        self.raw(method, &format!("{full}?{qs}"), body).await
    }

    pub async fn raw(&self, method: &str, path_and_query: &str, body: String) -> (u16, Value) {
        let url = format!("{}{}", self.base, path_and_query);
        let req = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url).header("content-type", "application/json").body(body),
        };
        let res = req.send().await.expect("http request");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// As [`Api::trigger`], but `None` instead of a panic when the node is unreachable.
    pub async fn try_trigger(&self, channels: &[&str], name: &str, data: &str) -> Option<u16> {
        let body = json!({"name": name, "channels": channels, "data": data}).to_string();
        let full = format!("/apps/{}/events", self.app_id);
        let qs = auth::sign_request(&self.key, &self.secret, "POST", &full, body.as_bytes(), now_secs(), &[]);
        let res = self
            .http
            .post(format!("{}{full}?{qs}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .ok()?;
        Some(res.status().as_u16())
    }

    pub async fn trigger(&self, channels: &[&str], name: &str, data: &str) -> (u16, Value) {
        self.call("POST", "/events", Some(json!({"name": name, "channels": channels, "data": data})), &[]).await
    }
}

// ---------------------------------------------------------------------------
// TLS (tests/tls.rs): a throwaway CA and leaf made with the openssl CLI, a TLS node,
// a wss:// client and an https API client that trust that CA only.

/// A test CA and a leaf certificate for `localhost` and `127.0.0.1` signed by it, in a
/// temporary directory that lives as long as this value.
pub struct TestCerts {
    pub dir: tempfile::TempDir,
    /// The CA certificate (what clients trust).
    pub ca: std::path::PathBuf,
    /// The leaf certificate the server presents.
    pub cert: std::path::PathBuf,
    /// The leaf's private key.
    pub key: std::path::PathBuf,
}

/// Runs `openssl` with whitespace-separated `args` in `dir`; panics with its stderr.
fn openssl(dir: &std::path::Path, args: &str) {
    let out = std::process::Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the openssl CLI runs (apt-get install openssl)");
    assert!(out.status.success(), "openssl {args} failed: {}", String::from_utf8_lossy(&out.stderr));
}

impl TestCerts {
    /// Generates the CA and the leaf (EC P-256, valid for two days).
    pub fn generate() -> TestCerts {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        openssl(d, "ecparam -name prime256v1 -genkey -noout -out ca.key");
        openssl(
            d,
            "req -x509 -new -key ca.key -out ca.pem -days 2 -subj /CN=rtc-test-CA \
             -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign",
        );
        openssl(d, "ecparam -name prime256v1 -genkey -noout -out leaf.sec1");
        // PKCS#8 ("BEGIN PRIVATE KEY"), what most tools write.
        openssl(d, "pkcs8 -topk8 -nocrypt -in leaf.sec1 -out key.pem");
        openssl(d, "req -new -key key.pem -out leaf.csr -subj /CN=localhost");
        std::fs::write(
            d.join("leaf.ext"),
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .unwrap();
        openssl(
            d,
            "x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -set_serial 4242 -days 2 -extfile leaf.ext -out cert.pem",
        );
        TestCerts { ca: d.join("ca.pem"), cert: d.join("cert.pem"), key: d.join("key.pem"), dir }
    }

    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(&self.ca).unwrap()
    }
}

/// [`one_app`] with `tls_cert`/`tls_key` in `[server]`.
pub fn one_app_tls(certs: &TestCerts, extra: &str) -> String {
    format!(
        "[server]\nadmin_token = \"{ADMIN_TOKEN}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\n[[apps]]\nid = \"{APP_ID}\"\nkey = \"{KEY}\"\nsecret = \"{SECRET}\"\n{extra}\n",
        certs.cert.display(),
        certs.key.display()
    )
}

/// A rustls client connector (ring, ALPN http/1.1) that trusts the PEM CA only.
pub fn tls_connector(ca_pem: &[u8]) -> tokio_rustls::TlsConnector {
    tls_connector_offering(ca_pem, &[b"http/1.1"])
}

/// [`tls_connector`] offering these ALPN protocols (none: no ALPN extension).
pub fn tls_connector_offering(ca_pem: &[u8], alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.expect("CA PEM parses")).expect("CA certificate accepted");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// TCP connect and TLS handshake (server name `localhost`), both bounded by [`WAIT`].
pub async fn tls_connect(
    addr: SocketAddr,
    connector: &tokio_rustls::TlsConnector,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(WAIT, async {
        let tcp = TcpStream::connect(addr).await?;
        connector.connect(name, tcp).await
    })
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS connect timed out"))?
}

/// A Pusher-protocol client over wss:// (tokio-tungstenite without its TLS features, on
/// a tokio-rustls stream).
pub struct TlsClient {
    pub ws: WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>,
    pub socket_id: String,
}

impl TlsClient {
    /// Connects to `wss://localhost:PORT/app/KEY` and waits for connection_established.
    pub async fn connect(addr: SocketAddr, connector: &tokio_rustls::TlsConnector) -> TlsClient {
        let tls = tls_connect(addr, connector).await.expect("TLS handshake");
        let url = format!("wss://localhost:{}/app/{KEY}?protocol=7&client=js&version=8.4.0&flash=false", addr.port());
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::client_async(url, tls))
            .await
            .expect("WebSocket handshake in time")
            .expect("WebSocket handshake");
        let mut c = TlsClient { ws, socket_id: String::new() };
        let hello = c.expect_event("pusher:connection_established").await;
        c.socket_id = data_of(&hello)["socket_id"].as_str().expect("socket_id").to_string();
        c
    }

    pub async fn send_json(&mut self, v: Value) {
        self.ws.send(Message::Text(v.to_string().into())).await.unwrap();
    }

    /// Waits (bounded by [`WAIT`]) for an event with this name, skipping others.
    pub async fn expect_event(&mut self, name: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no {name} within {WAIT:?}"))
                .unwrap_or_else(|| panic!("closed while waiting for {name}"))
                .unwrap_or_else(|e| panic!("error while waiting for {name}: {e}"));
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(t.as_str()).expect("server sends JSON");
                if v["event"] == name {
                    return v;
                }
            }
        }
    }

    pub async fn subscribe(&mut self, channel: &str) -> Value {
        self.send_json(json!({"event":"pusher:subscribe","data":{"channel": channel}})).await;
        self.expect_event("pusher_internal:subscription_succeeded").await
    }
}

impl Api {
    /// A signed API client for `https://127.0.0.1:PORT` that trusts the PEM CA only.
    pub fn new_tls(addr: SocketAddr, ca_pem: &[u8]) -> Api {
        let ca = reqwest::Certificate::from_pem(ca_pem).expect("CA PEM parses");
        Api {
            base: format!("https://127.0.0.1:{}", addr.port()),
            app_id: APP_ID.into(),
            key: KEY.into(),
            secret: SECRET.into(),
            http: reqwest::Client::builder()
                .timeout(WAIT)
                .no_proxy()
                .tls_built_in_root_certs(false)
                .add_root_certificate(ca)
                .build()
                .unwrap(),
        }
    }
}

/// `rtc serve` (the binary) under `ulimit -n NOFILE` with `toml` as its config file.
pub struct LimitedNode {
    /// The process.
    pub child: std::process::Child,
    /// Where it listens, from its banner: `http://ADDR` or `https://ADDR`.
    pub url: String,
    _config: tempfile::NamedTempFile,
}

impl LimitedNode {
    /// Starts the node and waits for its banner (the hard limit is inherited, so the
    /// node cannot raise it).
    pub fn start(toml: &str, nofile: u32) -> LimitedNode {
        use std::io::BufRead;
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::io::Write::write_all(&mut file, toml.as_bytes()).unwrap();
        let mut child = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "ulimit -n {nofile} && exec \"$RTC\" serve --host 127.0.0.1 --port 0 --config {}",
                file.path().display()
            ))
            .env("RTC", env!("CARGO_BIN_EXE_rtc"))
            .env_remove("RTC_CONFIG")
            .env_remove("RTC_TLS_CERT")
            .env_remove("RTC_TLS_KEY")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(stdout).lines();
        let url = loop {
            let line = lines.next().expect("banner").unwrap();
            if let Some(rest) = line.strip_prefix("rtc listening on ") {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        LimitedNode { child, url, _config: file }
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.url.split_once("://").unwrap().1.parse().unwrap()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for LimitedNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
