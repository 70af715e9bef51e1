//! Unit tests of the WebSocket codec: both roles over an in-memory pipe, and raw frames for
//! what a well-behaved peer never sends.
use super::*;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use tokio::io::{AsyncWriteExt, DuplexStream};

const MAX: usize = 64 * 1024;

fn pair(deflate: bool) -> (Socket<DuplexStream>, Socket<DuplexStream>) {
    let (a, b) = tokio::io::duplex(1 << 20);
    (
        Socket::new(a, Role::Server, deflate, MAX),
        Socket::new(b, Role::Client, deflate, MAX),
    )
}

/// A server socket and the raw client end, to write frames by hand.
fn raw(deflate: bool) -> (Socket<DuplexStream>, DuplexStream) {
    let (a, b) = tokio::io::duplex(1 << 20);
    (Socket::new(a, Role::Server, deflate, MAX), b)
}

/// A masked client frame.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [1, 2, 3, 4];
    let mut out = vec![first];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    let mut p = payload.to_vec();
    apply_mask(&mut p, mask);
    out.extend_from_slice(&p);
    out
}

fn metrics_json(n: usize) -> String {
    let servers: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"id":"srv-{i:05}","name":"web-{i}","status":"online","cpu_pct":{}.{},"mem_used_pct":{}.{},"last_sample_at":"2026-12-06T20:00:{:02}.000Z"}}"#,
                i * 7 % 100,
                i % 100,
                i * 13 % 100,
                i * 3 % 100,
                i % 60
            )
        })
        .collect();
    format!(r#"{{"type":"update","servers":[{}]}}"#, servers.join(","))
}

#[tokio::test]
async fn shared_messages_arrive_whole_compressed_and_plain() {
    for deflate in [true, false] {
        let (mut server, mut client) = pair(deflate);
        let big = Shared::new(metrics_json(300));
        let small = Shared::new("{\"type\":\"hello\"}".to_string());
        server.send_shared(&big).await.unwrap();
        server.send_shared(&small).await.unwrap();
        server.send_text("ünïcode ✓").await.unwrap();
        for want in [big.as_str(), small.as_str(), "ünïcode ✓"] {
            assert_eq!(
                client.recv().await.unwrap().unwrap(),
                Incoming::Text(want.to_string())
            );
        }
    }
}

#[test]
fn a_message_compresses_once_to_a_fraction_and_inflates_exactly() {
    let m = Shared::new(metrics_json(300));
    let z = m.deflated().expect("compressed").clone();
    assert!(
        z.len() * 3 < m.len(),
        "{} bytes compressed to {}",
        m.len(),
        z.len()
    );
    // The same bytes every time: made once, shared.
    assert_eq!(m.deflated().expect("compressed").as_ptr(), z.as_ptr());
    assert_eq!(inflate(&z, MAX).unwrap(), m.as_str().as_bytes());
    assert_eq!(
        inflate_prefix(&z, 16).unwrap(),
        &m.as_str().as_bytes()[..16]
    );
    // Incompressible and empty input survive too.
    let noise: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert_eq!(inflate(&deflate(&noise).unwrap(), 200_000).unwrap(), noise);
    assert_eq!(inflate(&deflate(b"").unwrap(), 10).unwrap(), b"");
}

#[test]
fn a_compressed_bomb_is_refused_at_the_limit() {
    let zeros = vec![0u8; 10 << 20];
    let z = deflate(&zeros).unwrap();
    assert!(z.len() < 20_000);
    assert!(matches!(inflate(&z, MAX), Err(WsError::TooLarge(_))));
    assert!(matches!(
        inflate(b"\xff\xfe not deflate", MAX),
        Err(WsError::Protocol(_))
    ));
}

#[tokio::test]
async fn the_server_reads_compressed_and_fragmented_client_messages() {
    let (mut server, mut client) = pair(true);
    client
        .send_text(r#"{"type":"subscribe","fleet":true}"#)
        .await
        .unwrap();
    assert_eq!(
        server.recv().await.unwrap().unwrap(),
        Incoming::Text(r#"{"type":"subscribe","fleet":true}"#.into())
    );

    // A compressed message in three frames, a ping in between (control frames may interleave).
    let (mut server, mut peer) = raw(true);
    let z = deflate(b"hello fragmented world").unwrap();
    let (a, rest) = z.split_at(3);
    let (b, c) = rest.split_at(4);
    peer.write_all(&frame(0x41, a)).await.unwrap(); // text, RSV1, not final
    peer.write_all(&frame(0x89, b"p")).await.unwrap(); // ping
    peer.write_all(&frame(0x00, b)).await.unwrap(); // continuation
    peer.write_all(&frame(0x80, c)).await.unwrap(); // final continuation
    assert_eq!(
        server.recv().await.unwrap().unwrap(),
        Incoming::Ping(Bytes::from_static(b"p"))
    );
    assert_eq!(
        server.recv().await.unwrap().unwrap(),
        Incoming::Text("hello fragmented world".into())
    );
}

#[tokio::test]
async fn frames_split_across_reads_are_reassembled() {
    let (mut server, mut peer) = raw(false);
    let long = "x".repeat(65_000);
    let bytes = frame(0x81, long.as_bytes());
    let task = tokio::spawn(async move {
        for chunk in bytes.chunks(997) {
            peer.write_all(chunk).await.unwrap();
            tokio::task::yield_now().await;
        }
        peer
    });
    assert_eq!(server.recv().await.unwrap().unwrap(), Incoming::Text(long));
    drop(task.await.unwrap());
    // The peer went away: the stream ends.
    assert!(server.recv().await.is_none());
}

#[tokio::test]
async fn close_ping_and_pong_are_delivered() {
    let (mut server, mut client) = pair(true);
    client
        .ping(Bytes::from_static(b"are you there"))
        .await
        .unwrap();
    let Incoming::Ping(p) = server.recv().await.unwrap().unwrap() else {
        panic!("ping expected")
    };
    server.pong(p).await.unwrap();
    assert_eq!(
        client.recv().await.unwrap().unwrap(),
        Incoming::Pong(Bytes::from_static(b"are you there"))
    );
    server.close(1008, "too slow").await.unwrap();
    assert_eq!(
        client.recv().await.unwrap().unwrap(),
        Incoming::Close(Some((1008, "too slow".into())))
    );
}

#[tokio::test]
async fn protocol_violations_are_errors_not_panics() {
    let cases: Vec<(bool, Vec<u8>, &str)> = vec![
        // Unmasked client frame.
        (false, vec![0x81, 0x02, b'h', b'i'], "masked"),
        // RSV1 without permessage-deflate.
        (false, frame(0xc1, b"zz"), "without permessage-deflate"),
        // RSV2.
        (true, frame(0xa1, b"zz"), "reserved bits"),
        // Continuation with nothing to continue.
        (false, frame(0x80, b"zz"), "continuation"),
        // Fragmented control frame, and one over 125 bytes.
        (false, frame(0x09, b"p"), "control"),
        (false, frame(0x89, &[0u8; 126]), "control"),
        // Reserved opcode.
        (false, frame(0x83, b"zz"), "header"),
        // Close with a one-byte payload.
        (false, frame(0x88, b"x"), "one-byte"),
    ];
    for (deflate, bytes, want) in cases {
        let (mut server, mut peer) = raw(deflate);
        peer.write_all(&bytes).await.unwrap();
        let err = server.recv().await.unwrap().unwrap_err();
        assert!(err.to_string().contains(want), "{err} (wanted {want})");
        assert_eq!(err.close_code(), 1002);
    }
    // Invalid UTF-8 in a text message; a message over the limit, plain or once inflated.
    let (mut server, mut peer) = raw(true);
    peer.write_all(&frame(0x81, b"\xff\xfe")).await.unwrap();
    assert_eq!(server.recv().await.unwrap().unwrap_err().close_code(), 1007);
    let (mut server, mut peer) = raw(true);
    peer.write_all(&frame(0x82, &vec![7u8; MAX + 1]))
        .await
        .unwrap();
    assert_eq!(server.recv().await.unwrap().unwrap_err().close_code(), 1009);
    let (mut server, mut peer) = raw(true);
    peer.write_all(&frame(0xc1, &deflate(&vec![b'a'; MAX * 4]).unwrap()))
        .await
        .unwrap();
    assert_eq!(server.recv().await.unwrap().unwrap_err().close_code(), 1009);
}

#[tokio::test]
async fn encoded_reception_leaves_compressed_messages_for_later() {
    let (mut server, mut client) = pair(true);
    let m = Shared::new(metrics_json(10));
    server.send_shared(&m).await.unwrap();
    let Incoming::Deflated { text: true, data } = client.recv_encoded().await.unwrap().unwrap()
    else {
        panic!("a deflated text message expected")
    };
    assert_eq!(Some(&data), m.deflated());
    assert_eq!(inflate(&data, MAX).unwrap(), m.as_str().as_bytes());
}

fn offer(value: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::SEC_WEBSOCKET_EXTENSIONS,
        HeaderValue::from_str(value).unwrap(),
    );
    h
}

#[test]
fn deflate_offers_are_read_as_rfc_7692_defines_them() {
    for yes in [
        "permessage-deflate",
        "permessage-deflate; client_max_window_bits", // Chromium's and Firefox's offer
        "permessage-deflate; client_max_window_bits=10; server_no_context_takeover",
        "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=15",
        "permessage-deflate; server_max_window_bits=10, permessage-deflate",
    ] {
        assert!(offers_deflate(&offer(yes)), "{yes}");
    }
    for no in [
        "x-webkit-deflate-frame",
        "permessage-deflate; server_max_window_bits=10",
        "permessage-deflate; unknown_param",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; server_no_context_takeover=1",
    ] {
        assert!(!offers_deflate(&offer(no)), "{no}");
    }
    assert!(!offers_deflate(&HeaderMap::new()));
}

#[test]
fn the_handshake_answer_follows_rfc_6455() {
    let mut h = offer("permessage-deflate; client_max_window_bits");
    h.insert(
        header::CONNECTION,
        HeaderValue::from_static("keep-alive, Upgrade"),
    );
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(
        header::SEC_WEBSOCKET_VERSION,
        HeaderValue::from_static("13"),
    );
    h.insert(
        header::SEC_WEBSOCKET_KEY,
        HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
    );
    let a = accept(&Method::GET, &h).unwrap();
    assert!(a.deflate);
    assert_eq!(a.response.status(), StatusCode::SWITCHING_PROTOCOLS);
    // The example of RFC 6455 section 1.3.
    assert_eq!(
        a.response.headers()[header::SEC_WEBSOCKET_ACCEPT],
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    assert_eq!(
        a.response.headers()[header::SEC_WEBSOCKET_EXTENSIONS],
        DEFLATE_RESPONSE
    );
    h.remove(header::SEC_WEBSOCKET_EXTENSIONS);
    let plain = accept(&Method::GET, &h).unwrap();
    assert!(!plain.deflate);
    assert!(
        !plain
            .response
            .headers()
            .contains_key(header::SEC_WEBSOCKET_EXTENSIONS)
    );
    assert!(accept(&Method::POST, &h).is_err());
    h.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
    assert!(accept(&Method::GET, &h).is_err());
    h.insert(
        header::SEC_WEBSOCKET_VERSION,
        HeaderValue::from_static("13"),
    );
    h.remove(header::SEC_WEBSOCKET_KEY);
    assert!(accept(&Method::GET, &h).is_err());
}
