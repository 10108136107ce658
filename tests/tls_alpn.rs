//! ALPN on the TLS listener: a client that offers only `h2` gets a TLS session without
//! ALPN and is served HTTP/1.1, not a fatal `no_application_protocol` alert.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Handshakes offering `alpn`, asks for `/up` over HTTP/1.1; returns the negotiated
/// protocol and the status line.
async fn up_over_tls(addr: std::net::SocketAddr, ca: &[u8], alpn: &[&[u8]]) -> (Option<Vec<u8>>, String) {
    let mut tls = tls_connect(addr, &tls_connector_offering(ca, alpn)).await.expect("TLS handshake");
    let negotiated = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    tls.write_all(b"GET /up HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(WAIT, tls.read_to_end(&mut got)).await.expect("response in time").ok();
    let text = String::from_utf8_lossy(&got).to_string();
    (negotiated, text.lines().next().unwrap_or_default().to_string())
}

#[tokio::test]
async fn a_client_offering_only_h2_is_served_http_1_1() {
    let certs = TestCerts::generate();
    let server = TestServer::start(&one_app_tls(&certs, "")).await;
    let ca = certs.ca_pem();

    let (alpn, status) = up_over_tls(server.addr, &ca, &[b"h2"]).await;
    assert_eq!(alpn, None, "no ALPN protocol selected");
    assert_eq!(status, "HTTP/1.1 200 OK");

    // Clients that offer http/1.1 (browsers offer h2 and http/1.1) still get it selected.
    let (alpn, status) = up_over_tls(server.addr, &ca, &[b"h2", b"http/1.1"]).await;
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(status, "HTTP/1.1 200 OK");
    let (alpn, _) = up_over_tls(server.addr, &ca, &[]).await;
    assert_eq!(alpn, None);
    server.stop().await;
}
