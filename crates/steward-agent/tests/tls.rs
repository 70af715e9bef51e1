//! TLS to a hub with a private CA: trusted with --ca-file, refused without it. The
//! certificates are made with the openssl command-line tool.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::hub::{FakeHub, HubTls};
use support::{Agent, TempDir};

const TOKEN: &str = "stw_tls_token";

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("this test needs the openssl tool (apt-get install openssl): {e}")
        });
    assert!(
        status.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}

/// A CA, and a certificate for 127.0.0.1 signed by it.
fn make_certs(dir: &TempDir) -> (HubTls, String) {
    let d = &dir.0;
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=Steward test CA"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(d, &ca);
    let mut csr = vec!["req", "-subj", "/CN=127.0.0.1"];
    csr.extend(ec);
    csr.extend(["-keyout", "hub.key", "-out", "hub.csr"]);
    openssl(d, &csr);
    dir.file(
        "ext.cnf",
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "hub.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "hub.pem",
        ],
    );
    let tls = HubTls {
        cert_pem: d.join("hub.pem"),
        key_pem: d.join("hub.key"),
    };
    (tls, d.join("ca.pem").to_string_lossy().into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_is_trusted_with_ca_file_and_refused_without() {
    let dir = TempDir::new("tls");
    let (tls, ca) = make_certs(&dir);
    let token = dir.file("token", TOKEN);
    let token = token.to_str().expect("path");
    let hub = FakeHub::start_with(TOKEN, 1, Some(tls)).await;
    let url = hub.url();
    assert!(url.starts_with("https://"));

    let untrusting = Agent::start(&["--hub", &url, "--token-file", token, "--interval", "1"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        hub.state().welcomed,
        0,
        "no connection without trusting the CA"
    );
    let log = untrusting.stderr();
    assert!(
        log.contains("cannot connect") && log.contains("certificate"),
        "says it is the certificate: {log}"
    );
    drop(untrusting);

    let agent = Agent::start(&[
        "--hub",
        &url,
        "--token-file",
        token,
        "--interval",
        "1",
        "--ca-file",
        &ca,
    ]);
    hub.wait_for(15, "two snapshots over TLS", |s| s.stored_ts().len() >= 2)
        .await;
    assert!(agent.stderr().contains("connected to wss://127.0.0.1:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_ca_file_stops_the_agent_with_status_2() {
    let mut agent = Agent::start(&[
        "--hub",
        "https://127.0.0.1:9",
        "--token-file",
        "/nonexistent",
        "--ca-file",
        "/nonexistent/ca.pem",
    ]);
    let status = agent.wait_exit(5).await;
    assert_eq!(status.code(), Some(2));
    assert!(agent.stderr().contains("--ca-file"), "{}", agent.stderr());
}
