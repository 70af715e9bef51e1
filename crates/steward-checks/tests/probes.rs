//! The probes against real servers the test starts on loopback: HTTP servers answering 200
//! with a keyword, 500, or never; an HTTPS server with a self-signed certificate that expires in
//! five days; an open and a closed TCP port; a small DNS server. Loopback is not a check target
//! by default: most tests allow it, as an administrator would; the last ones are the attacks
//! the default refuses (addresses, names and redirects that reach the hub itself).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, MX};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use serde_json::json;
use steward_checks::{CheckResult, CheckSpec, CheckStatus, TargetPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

const SECOND: Duration = Duration::from_secs(1);

/// Loopback allowed, as an administrator allows it for checks of services on the hub.
fn loopback_allowed() -> TargetPolicy {
    TargetPolicy::allowing(["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()])
}

/// A run with loopback allowed.
async fn run(spec: &CheckSpec, timeout: Duration) -> CheckResult {
    steward_checks::run(spec, timeout, &loopback_allowed()).await
}

/// How a test HTTP server answers.
#[derive(Clone, Copy)]
enum Answer {
    /// 200 with a body containing "all systems nominal".
    Healthy,
    /// 500.
    Broken,
    /// Accepts the connection and reads the request, but never answers.
    Hang,
    /// 302 to /elsewhere, which answers 200.
    Redirect,
}

fn response(answer: Answer, path: &str) -> Option<String> {
    let (status, body, extra) = match (answer, path) {
        (Answer::Hang, _) => return None,
        (Answer::Healthy, _) | (Answer::Redirect, "/elsewhere") => {
            ("200 OK", "<html>all systems nominal</html>", "")
        }
        (Answer::Broken, _) => ("500 Internal Server Error", "oops", ""),
        (Answer::Redirect, _) => ("302 Found", "", "Location: /elsewhere\r\n"),
    };
    Some(format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    ))
}

async fn serve_http<S>(mut stream: S, answer: Answer)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    match response(answer, &path) {
        Some(r) => {
            let _ = stream.write_all(r.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
        None => tokio::time::sleep(Duration::from_secs(3600)).await,
    }
}

/// An HTTP server on a random loopback port.
async fn http_server(answer: Answer) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(serve_http(stream, answer));
        }
    });
    addr
}

/// An HTTPS server whose self-signed certificate (for `localhost`) expires in `days` days.
async fn https_server(days: i64) -> SocketAddr {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(30);
    params.not_after = now + time::Duration::days(days) + time::Duration::hours(1);
    let cert = params.self_signed(&key).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    serve_http(tls, Answer::Healthy).await;
                }
            });
        }
    });
    addr
}

/// A DNS server on a random UDP port: `web.test.` has two A records, `mail.test.` an MX,
/// everything else is NXDOMAIN; `slow.test.` is never answered.
async fn dns_server() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let Some(q) = query.queries.first().cloned() else {
                continue;
            };
            let name = q.name().to_ascii().to_lowercase();
            if name == "slow.test." {
                continue;
            }
            let mut reply = Message::new(
                query.metadata.id,
                MessageType::Response,
                query.metadata.op_code,
            );
            reply.metadata.recursion_desired = query.metadata.recursion_desired;
            reply.metadata.recursion_available = true;
            reply.metadata.authoritative = true;
            reply.add_query(q.clone());
            let owner = q.name().clone();
            match (name.as_str(), q.query_type()) {
                ("web.test.", RecordType::A) => {
                    for ip in [[192, 0, 2, 10], [192, 0, 2, 11]] {
                        reply.add_answer(Record::from_rdata(
                            owner.clone(),
                            60,
                            RData::A(A::from(std::net::Ipv4Addr::from(ip))),
                        ));
                    }
                }
                ("mail.test.", RecordType::MX) => {
                    reply.add_answer(Record::from_rdata(
                        owner.clone(),
                        60,
                        RData::MX(MX::new(10, Name::from_ascii("mx1.test.").unwrap())),
                    ));
                }
                ("web.test.", _) | ("mail.test.", _) => {}
                _ => reply.metadata.response_code = ResponseCode::NXDomain,
            }
            let _ = socket.send_to(&reply.to_vec().unwrap(), peer).await;
        }
    });
    addr
}

fn spec(v: serde_json::Value) -> CheckSpec {
    let spec: CheckSpec = serde_json::from_value(v).unwrap();
    steward_checks::validate(&spec).unwrap();
    spec
}

fn install_crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

#[tokio::test]
async fn http_up_with_keyword_down_on_500_and_on_missing_keyword() {
    install_crypto();
    let ok = http_server(Answer::Healthy).await;
    let r = run(
        &spec(
            json!({ "type": "http", "url": format!("http://{ok}/health"), "keyword": "nominal" }),
        ),
        5 * SECOND,
    )
    .await;
    assert_eq!(r.status, CheckStatus::Up, "{r:?}");
    assert_eq!(r.http_status, Some(200));
    assert!(r.latency_ms.is_some());
    assert_eq!(r.cert_days_left, None);

    let r = run(
        &spec(json!({ "type": "http", "url": format!("http://{ok}/"), "keyword": "error" })),
        5 * SECOND,
    )
    .await;
    assert_eq!(r.status, CheckStatus::Down);
    assert!(r.message.contains("“error” not found"), "{}", r.message);

    let r = run(
        &spec(json!({ "type": "http", "url": format!("http://{ok}/"), "keyword": "nominal", "keyword_absent": true })),
        5 * SECOND,
    )
    .await;
    assert_eq!(r.status, CheckStatus::Down, "{r:?}");

    let broken = http_server(Answer::Broken).await;
    let r = run(
        &spec(json!({ "type": "http", "url": format!("http://{broken}/") })),
        5 * SECOND,
    )
    .await;
    assert_eq!(r.status, CheckStatus::Down);
    assert_eq!(r.http_status, Some(500));
    assert_eq!(r.message, "HTTP 500, expected 200-399");
    // …unless 500 is what the check expects.
    let r = run(
        &spec(json!({ "type": "http", "method": "HEAD", "url": format!("http://{broken}/"), "expected_status": "500-504" })),
        5 * SECOND,
    )
    .await;
    assert_eq!(r.status, CheckStatus::Up, "{r:?}");
}

#[tokio::test]
async fn redirects_are_followed_only_when_asked() {
    install_crypto();
    let addr = http_server(Answer::Redirect).await;
    let url = format!("http://{addr}/");
    let r = run(
        &spec(json!({ "type": "http", "url": url, "keyword": "nominal" })),
        5 * SECOND,
    )
    .await;
    assert_eq!(
        (r.status, r.http_status),
        (CheckStatus::Up, Some(200)),
        "{r:?}"
    );
    let r = run(
        &spec(json!({ "type": "http", "url": url, "follow_redirects": false, "expected_status": "200" })),
        5 * SECOND,
    )
    .await;
    assert_eq!(
        (r.status, r.http_status),
        (CheckStatus::Down, Some(302)),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_server_that_hangs_is_down_after_the_timeout() {
    install_crypto();
    let addr = http_server(Answer::Hang).await;
    let started = Instant::now();
    let r = run(
        &spec(json!({ "type": "http", "url": format!("http://{addr}/") })),
        Duration::from_millis(700),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(r.status, CheckStatus::Down);
    assert_eq!(r.message, "no answer within 700 ms");
    assert!(
        took >= Duration::from_millis(650),
        "gave up too early: {took:?}"
    );
    assert!(
        took < Duration::from_secs(3),
        "timeout not honoured: {took:?}"
    );
}

#[tokio::test]
async fn self_signed_certificate_near_expiry() {
    install_crypto();
    let addr = https_server(5).await;
    let url = format!("https://localhost:{}/", addr.port());
    // Verified: the certificate is not trusted, so the check is down.
    let r = run(&spec(json!({ "type": "http", "url": url })), 5 * SECOND).await;
    assert_eq!(r.status, CheckStatus::Down, "{r:?}");
    assert!(
        r.message.to_lowercase().contains("certificate"),
        "{}",
        r.message
    );
    // Not verified: up, but degraded because it expires within the default 14 days.
    let r = run(
        &spec(json!({ "type": "http", "url": url, "verify_tls": false })),
        5 * SECOND,
    )
    .await;
    assert_eq!(r.status, CheckStatus::Degraded, "{r:?}");
    assert_eq!(r.cert_days_left, Some(5));
    assert_eq!(r.http_status, Some(200));
    assert!(r.message.contains("expires in 5 days"), "{}", r.message);
    // With the warning at 3 days it is simply up, still reporting the days left.
    let r = run(
        &spec(json!({ "type": "http", "url": url, "verify_tls": false, "cert_warn_days": 3 })),
        5 * SECOND,
    )
    .await;
    assert_eq!(
        (r.status, r.cert_days_left),
        (CheckStatus::Up, Some(5)),
        "{r:?}"
    );
}

#[tokio::test]
async fn an_expired_certificate_is_down() {
    install_crypto();
    let addr = https_server(-2).await;
    let r = run(
        &spec(json!({ "type": "http", "url": format!("https://127.0.0.1:{}/", addr.port()), "verify_tls": false })),
        5 * SECOND,
    )
    .await;
    assert_eq!(r.status, CheckStatus::Down, "{r:?}");
    assert_eq!(r.cert_days_left, Some(-2));
    assert!(r.message.contains("expired 2 days ago"), "{}", r.message);
}

#[tokio::test]
async fn slow_answers_are_degraded() {
    install_crypto();
    let addr = http_server(Answer::Healthy).await;
    // Any real request takes at least a millisecond or two; pretend 1 ms is the limit and
    // make the server slow enough to exceed it surely.
    let slow = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_addr = slow.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = slow.accept().await {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                serve_http(s, Answer::Healthy).await;
            });
        }
    });
    let r = run(
        &spec(
            json!({ "type": "http", "url": format!("http://{slow_addr}/"), "max_response_ms": 20 }),
        ),
        5 * SECOND,
    )
    .await;
    assert_eq!(r.status, CheckStatus::Degraded, "{r:?}");
    assert!(r.message.contains("slower than 20 ms"), "{}", r.message);
    let r = run(
        &spec(json!({ "type": "http", "url": format!("http://{addr}/"), "max_response_ms": 5000 })),
        5 * SECOND,
    )
    .await;
    assert_eq!(r.status, CheckStatus::Up, "{r:?}");
}

#[tokio::test]
async fn tcp_open_and_closed_ports() {
    let open = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = open.local_addr().unwrap().port();
    let r = run(
        &spec(json!({ "type": "tcp", "host": "127.0.0.1", "port": port })),
        SECOND,
    )
    .await;
    assert_eq!(r.status, CheckStatus::Up, "{r:?}");
    assert!(r.latency_ms.is_some());
    // A port that was just free: nobody listens there.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = run(
        &spec(json!({ "type": "tcp", "host": "127.0.0.1", "port": closed })),
        SECOND,
    )
    .await;
    assert_eq!(r.status, CheckStatus::Down);
    assert!(r.message.starts_with("cannot connect"), "{}", r.message);
    drop(open);
}

#[tokio::test]
async fn dns_answers_nxdomain_and_expected_values() {
    let dns = dns_server().await.to_string();
    let r = run(
        &spec(json!({ "type": "dns", "name": "web.test", "resolver": dns })),
        2 * SECOND,
    )
    .await;
    assert_eq!(r.status, CheckStatus::Up, "{r:?}");
    assert_eq!(r.message, "A 192.0.2.10, 192.0.2.11");

    let r = run(
        &spec(
            json!({ "type": "dns", "name": "web.test", "resolver": dns, "expected": "192.0.2.11" }),
        ),
        2 * SECOND,
    )
    .await;
    assert_eq!(r.status, CheckStatus::Up, "{r:?}");
    let r = run(
        &spec(
            json!({ "type": "dns", "name": "web.test", "resolver": dns, "expected": "192.0.2.99" }),
        ),
        2 * SECOND,
    )
    .await;
    assert_eq!(r.status, CheckStatus::Down, "{r:?}");
    assert!(
        r.message
            .starts_with("expected 192.0.2.99, got A 192.0.2.10"),
        "{}",
        r.message
    );

    let r = run(
        &spec(json!({ "type": "dns", "name": "mail.test", "record_type": "MX", "resolver": dns, "expected": "10 mx1.test." })),
        2 * SECOND,
    )
    .await;
    assert_eq!(
        (r.status, r.message.as_str()),
        (CheckStatus::Up, "MX 10 mx1.test"),
        "{r:?}"
    );

    let r = run(
        &spec(json!({ "type": "dns", "name": "missing.test", "resolver": dns })),
        2 * SECOND,
    )
    .await;
    assert_eq!(r.status, CheckStatus::Down, "{r:?}");
    assert!(r.message.contains("NXDOMAIN"), "{}", r.message);

    let r = run(
        &spec(json!({ "type": "dns", "name": "web.test", "record_type": "AAAA", "resolver": dns })),
        2 * SECOND,
    )
    .await;
    assert_eq!(r.status, CheckStatus::Down, "{r:?}");
    assert!(r.message.contains("no AAAA records"), "{}", r.message);

    let started = Instant::now();
    let r = run(
        &spec(json!({ "type": "dns", "name": "slow.test", "resolver": dns })),
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(r.status, CheckStatus::Down, "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "timeout not honoured"
    );
}

// ---------------------------------------------------------------------------------------------
// What a check may not reach by default: the attacks, and the refusals.
// ---------------------------------------------------------------------------------------------

/// The end of every refusal's text.
const REFUSED: &str = "is not allowed for checks; an administrator can allow it in Settings";

/// A definition as given, unchecked (the engine must refuse what validation would let by).
fn raw(v: serde_json::Value) -> CheckSpec {
    serde_json::from_value(v).unwrap()
}

/// A server on `ip` that answers every request with `reply` and counts the connections it
/// accepts.
async fn canned(
    ip: &str,
    reply: impl FnOnce(SocketAddr) -> String,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let reply = reply(addr);
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let reply = reply.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = s.write_all(reply.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (addr, hits)
}

fn page(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn redirect(location: &str) -> String {
    format!(
        "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
}

#[tokio::test]
async fn loopback_is_refused_by_default_however_it_is_written() {
    install_crypto();
    let (secret, hits) = canned("127.0.0.1", |_| page("steward_http_requests_total")).await;
    let port = secret.port();
    let strict = TargetPolicy::default();
    let keyword = |url: String| raw(json!({ "type": "http", "url": url, "keyword": "steward_" }));
    let r = steward_checks::run(
        &keyword(format!("http://127.0.0.1:{port}/metrics")),
        2 * SECOND,
        &strict,
    )
    .await;
    assert_eq!(
        (r.status, r.message.as_str(), r.http_status),
        (
            CheckStatus::Down,
            "target address 127.0.0.1 (loopback) is not allowed for checks; an administrator can allow it in Settings",
            None
        ),
        "{r:?}"
    );
    for url in [
        // Other spellings of 127.0.0.1 (the URL parser turns them into 127.0.0.1).
        format!("http://127.1:{port}/metrics"),
        format!("http://2130706433:{port}/metrics"),
        format!("http://0x7f.0.0.1:{port}/metrics"),
        // Names that resolve to loopback.
        format!("http://localhost:{port}/metrics"),
        // IPv6 forms that reach IPv4 loopback, and the "any" addresses Linux connects locally.
        format!("http://[::ffff:127.0.0.1]:{port}/metrics"),
        format!("http://[::1]:{port}/metrics"),
        format!("http://0.0.0.0:{port}/metrics"),
        format!("http://[::]:{port}/metrics"),
    ] {
        let r = steward_checks::run(&keyword(url.clone()), 2 * SECOND, &strict).await;
        assert_eq!(r.status, CheckStatus::Down, "{url}: {r:?}");
        assert!(r.message.ends_with(REFUSED), "{url}: {}", r.message);
    }
    for host in [
        "127.0.0.1",
        "127.1",
        "localhost",
        "::ffff:127.0.0.1",
        "[::1]",
        "0.0.0.0",
    ] {
        let r = steward_checks::run(
            &raw(json!({ "type": "tcp", "host": host, "port": port })),
            2 * SECOND,
            &strict,
        )
        .await;
        assert_eq!(r.status, CheckStatus::Down, "{host}: {r:?}");
        assert!(r.message.ends_with(REFUSED), "{host}: {}", r.message);
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing reached the server");

    // A name server on loopback is a target too (the hub's own resolvers are not).
    let dns = dns_server().await;
    let r = steward_checks::run(
        &raw(json!({ "type": "dns", "name": "web.test", "resolver": dns.to_string() })),
        2 * SECOND,
        &strict,
    )
    .await;
    assert_eq!(r.status, CheckStatus::Down, "{r:?}");
    assert_eq!(
        r.message,
        format!("target address 127.0.0.1 (loopback) {REFUSED}")
    );

    // Once loopback is allowed, the same checks run.
    let r = run(
        &keyword(format!("http://localhost:{port}/metrics")),
        2 * SECOND,
    )
    .await;
    assert_eq!(
        (r.status, r.http_status),
        (CheckStatus::Up, Some(200)),
        "{r:?}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    let r = run(
        &raw(json!({ "type": "tcp", "host": "127.0.0.1", "port": port })),
        2 * SECOND,
    )
    .await;
    assert_eq!(r.status, CheckStatus::Up, "{r:?}");
}

#[tokio::test]
async fn redirects_to_refused_addresses_are_not_followed() {
    install_crypto();
    let (secret, hits) = canned("127.0.0.1", |_| page("steward_http_requests_total")).await;
    let port = secret.port();
    // 127.0.0.5 stands for an allowed server (say, on the LAN) whose answer the check's author
    // controls.
    let policy = TargetPolicy::allowing(["127.0.0.5/32".parse().unwrap()]);
    for location in [
        format!("http://127.0.0.1:{port}/metrics"),
        format!("http://localhost:{port}/metrics"),
        format!("http://[::ffff:7f00:1]:{port}/metrics"),
        format!("http://169.254.169.254:{port}/latest/meta-data/"),
    ] {
        let (front, front_hits) = canned("127.0.0.5", |_| redirect(&location)).await;
        let r = steward_checks::run(
            &raw(
                json!({ "type": "http", "url": format!("http://{front}/"), "keyword": "steward_" }),
            ),
            2 * SECOND,
            &policy,
        )
        .await;
        assert_eq!(r.status, CheckStatus::Down, "{location}: {r:?}");
        assert!(r.message.ends_with(REFUSED), "{location}: {}", r.message);
        assert_eq!(
            front_hits.load(Ordering::SeqCst),
            1,
            "the first hop was made"
        );
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "no redirect reached the server"
    );

    // A redirect between allowed servers is followed, at most ten times.
    let (end, _) = canned("127.0.0.5", |_| page("fine")).await;
    let (hop, _) = canned("127.0.0.5", |_| redirect(&format!("http://{end}/"))).await;
    let r = steward_checks::run(
        &raw(json!({ "type": "http", "url": format!("http://{hop}/"), "keyword": "fine" })),
        2 * SECOND,
        &policy,
    )
    .await;
    assert_eq!(
        (r.status, r.http_status),
        (CheckStatus::Up, Some(200)),
        "{r:?}"
    );
    let (circle, laps) = canned("127.0.0.5", |me| redirect(&format!("http://{me}/again"))).await;
    let r = steward_checks::run(
        &raw(json!({ "type": "http", "url": format!("http://{circle}/") })),
        2 * SECOND,
        &policy,
    )
    .await;
    assert_eq!(r.status, CheckStatus::Down, "{r:?}");
    assert!(
        r.message.contains("more than 10 redirects"),
        "{}",
        r.message
    );
    assert_eq!(
        laps.load(Ordering::SeqCst),
        11,
        "the first request and ten redirects"
    );
}

#[tokio::test]
async fn the_hubs_own_addresses_are_refused() {
    let hub = steward_checks::HubAddresses::default();
    let own: Vec<IpAddr> = hub
        .current()
        .into_iter()
        .filter(|ip| TargetPolicy::default().check(*ip).is_ok())
        .collect();
    assert!(
        !own.is_empty(),
        "this test needs a network interface with an address that is neither loopback nor \
         link-local (see `ip addr`)"
    );
    let policy = TargetPolicy::new(vec![], hub.current());
    for ip in &own {
        let r = steward_checks::run(
            &raw(json!({ "type": "tcp", "host": ip.to_string(), "port": 9 })),
            SECOND,
            &policy,
        )
        .await;
        assert_eq!(
            r.message,
            format!("target address {ip} (the hub's own address) {REFUSED}"),
            "{r:?}"
        );
    }
}
