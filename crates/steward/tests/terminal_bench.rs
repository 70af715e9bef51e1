//! Web terminal benchmarks against a real OpenSSH server on loopback, compared with plain
//! `ssh -tt` to the same sshd with the same key. Ignored by default; run with
//!
//! ```sh
//! cargo test --release -p steward --test terminal_bench -- --ignored --nocapture --test-threads 1
//! ```
//!
//! (`BENCH_SESSIONS`, `BENCH_KEYS` and `BENCH_MB` change the sizes; `BENCH_STTY`, default
//! `-echo`, the terminal mode `cat` runs in, e.g. `raw -echo`.) Results go in
//! docs/PERFORMANCE.md.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::json;
use steward_testkit::sshd::{Sshd, key_pair};
use steward_testkit::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Bench {
    sshd: Sshd,
    app: TestApp,
    admin: Session,
    server: String,
    key_file: tempfile::NamedTempFile,
}

async fn bench() -> Bench {
    // One SSH connection carries every terminal of a server: allow more than the default 10
    // channels per connection (and 100 ssh clients at once).
    let sshd = Sshd::start_with(
        &["127.0.0.2".to_string()],
        "MaxSessions 500\nMaxStartups 500",
    );
    // Steward on threads of its own, so the benchmark's 100 WebSocket clients (browsers, in
    // real use) do not queue on Steward's workers — as the `ssh` clients are other processes.
    // One user opens every terminal of the benchmark: above the per-user socket cap (50).
    let app = TestApp::spawn_isolated(|c| {
        c.ssh_max_connections = 1024;
        c.max_sockets_per_user = 10_000;
    })
    .await;
    let admin = app.admin().await;
    let server = admin
        .create_server(
            json!({ "name": "bench", "host": sshd.host, "port": sshd.port, "ssh_user": sshd.user }),
        )
        .await;
    let (private, public) = key_pair("");
    sshd.authorize(&public);
    admin.set_private_key(&server, &private).await;
    let key_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key_file.path(), &private).unwrap();
    let (s, b) = admin
        .post("/api/v1/auth/step-up", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    Bench {
        sshd,
        app,
        admin,
        server,
        key_file,
    }
}

async fn open(b: &Bench) -> Ws {
    let url = format!(
        "{}/api/v1/servers/{}/terminal",
        b.app.base.replace("http://", "ws://"),
        b.server
    );
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", b.admin.token).parse().unwrap(),
    );
    // Like browsers, without Nagle's algorithm.
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, None, true)
        .await
        .unwrap();
    loop {
        if let Some(Ok(Message::Text(t))) = ws.next().await {
            assert!(t.contains("ready"), "{t}");
            break;
        }
    }
    // The shell is ready when it runs a command: the terminal echoes typed text at once, but
    // only the shell prints 42 (a login shell's start-up files can take seconds, and 100 of
    // them at once would otherwise be measured as keystroke latency).
    ws.send(Message::Binary(b"echo READY-$((6*7))\r".to_vec().into()))
        .await
        .unwrap();
    ws_until(&mut ws, b"READY-42").await;
    ws
}

/// Output until `needle` appears; returns the bytes read.
async fn ws_until(ws: &mut Ws, needle: &[u8]) -> usize {
    let mut tail: Vec<u8> = Vec::new();
    let mut total = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(120), ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => {
                total += b.len();
                tail.extend_from_slice(&b);
                if tail.windows(needle.len()).any(|w| w == needle) {
                    return total;
                }
                let keep = tail.len().saturating_sub(needle.len());
                tail.drain(..keep);
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("terminal ended: {other:?}"),
        }
    }
}

fn ssh(b: &Bench, tty: bool, command: &str) -> tokio::process::Command {
    let mut c = tokio::process::Command::new("ssh");
    if tty {
        c.arg("-tt");
    }
    c.args([
        "-q",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-i",
    ])
    .arg(b.key_file.path())
    .args(["-p", &b.sshd.port.to_string()])
    .arg(format!("{}@{}", b.sshd.user, b.sshd.host))
    .arg(command)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .kill_on_drop(true);
    c
}

fn percentiles(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let at = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0;
    (at(0.5), at(0.99), at(1.0))
}

/// Keystroke echo latency: every session runs `cat` (the PTY echoes each key); each sends a
/// key every 20 ms and times its echo. Sessions are measured once their shell is ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn keystroke_echo_latency() {
    let sessions = env_num("BENCH_SESSIONS", 100);
    let keys = env_num("BENCH_KEYS", 100);
    let b = Arc::new(bench().await);

    // Steward: WebSocket → SSH PTY.
    let mut tasks = Vec::new();
    for _ in 0..sessions {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            let mut ws = open(&b).await;
            ws.send(Message::Binary(b"exec cat\r".to_vec().into()))
                .await
                .unwrap();
            ws_until(&mut ws, b"exec cat\r\n").await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let mut times = Vec::new();
            for i in 0..keys {
                let key = [b'a' + (i % 26) as u8];
                let t = Instant::now();
                ws.send(Message::Binary(key.to_vec().into())).await.unwrap();
                ws_until(&mut ws, &key).await;
                times.push(t.elapsed());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = ws.close(None).await;
            times
        }));
    }
    let mut steward = Vec::new();
    for t in tasks {
        steward.extend(t.await.unwrap());
    }

    // ssh -tt: one client process per session.
    let mut tasks = Vec::new();
    for _ in 0..sessions {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            let mut child = ssh(&b, true, "cat").spawn().unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let mut stdout = child.stdout.take().unwrap();
            let mut buf = [0u8; 4096];
            // The first key also waits for the connection.
            stdin.write_all(b"z").await.unwrap();
            loop {
                let n = stdout.read(&mut buf).await.unwrap();
                assert!(n > 0, "ssh ended");
                if buf[..n].contains(&b'z') {
                    break;
                }
            }
            let mut times = Vec::new();
            for i in 0..keys {
                let key = b'a' + (i % 26) as u8;
                let t = Instant::now();
                stdin.write_all(&[key]).await.unwrap();
                loop {
                    let n = stdout.read(&mut buf).await.unwrap();
                    assert!(n > 0, "ssh ended");
                    if buf[..n].contains(&key) {
                        break;
                    }
                }
                times.push(t.elapsed());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = child.kill().await;
            times
        }));
    }
    let mut plain = Vec::new();
    for t in tasks {
        plain.extend(t.await.unwrap());
    }
    let (s50, s99, smax) = percentiles(steward);
    let (p50, p99, pmax) = percentiles(plain);
    println!(
        "BENCH echo sessions={sessions} keys={keys}\n\
         BENCH steward  p50={s50:.2}ms p99={s99:.2}ms max={smax:.2}ms\n\
         BENCH ssh -tt  p50={p50:.2}ms p99={p99:.2}ms max={pmax:.2}ms"
    );
}

/// Throughput: `cat` of a large file in the terminal, against `ssh -tt host "stty …; cat file"`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn cat_throughput() {
    let mb = env_num("BENCH_MB", 100);
    let b = bench().await;
    let file = tempfile::NamedTempFile::new().unwrap();
    {
        use std::io::Write;
        let line = format!("{}\n", "0123456789abcdef".repeat(4));
        let mut w = std::io::BufWriter::new(std::fs::File::create(file.path()).unwrap());
        for _ in 0..(mb * 1024 * 1024 / line.len()) {
            w.write_all(line.as_bytes()).unwrap();
        }
    }
    let path = file.path().display().to_string();

    // `BENCH_STTY="raw -echo"` measures without the PTY's output processing.
    let stty = std::env::var("BENCH_STTY").unwrap_or_else(|_| "-echo".into());
    let mut ws = open(&b).await;
    ws.send(Message::Binary(
        format!("stty {stty}\r").into_bytes().into(),
    ))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cmd = format!("cat {path}; echo END-$((6*7))\r");
    let t = Instant::now();
    ws.send(Message::Binary(cmd.into_bytes().into()))
        .await
        .unwrap();
    let bytes = ws_until(&mut ws, b"END-42").await;
    let steward = t.elapsed();
    let _ = ws.close(None).await;

    let t = Instant::now();
    let mut child = ssh(&b, true, &format!("stty {stty}; cat {path}"))
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut plain_bytes = 0;
    loop {
        let n = stdout.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        plain_bytes += n;
    }
    let plain = t.elapsed();
    let rate = |n: usize, d: Duration| n as f64 / (1024.0 * 1024.0) / d.as_secs_f64();
    println!(
        "BENCH cat {mb} MB (stty {stty})\n\
         BENCH steward  {:.2}s {:.1} MB/s ({bytes} bytes)\n\
         BENCH ssh -tt  {:.2}s {:.1} MB/s ({plain_bytes} bytes, includes connecting)",
        steward.as_secs_f64(),
        rate(bytes, steward),
        plain.as_secs_f64(),
        rate(plain_bytes, plain),
    );
    drop(b.sshd);
}
