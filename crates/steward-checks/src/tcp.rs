//! TCP checks: a connection to the port is accepted (then closed at once).
use std::time::Instant;

use steward_proto::{CheckStatus, TcpCheck};

use crate::{CheckResult, error_chain};

pub(crate) async fn probe(t: &TcpCheck) -> CheckResult {
    let host = t.host.trim();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let start = Instant::now();
    match tokio::net::TcpStream::connect((host, t.port)).await {
        Ok(stream) => {
            drop(stream);
            let r = CheckResult::new(CheckStatus::Up, "").latency(start);
            let ms = r.latency_ms.unwrap_or(0);
            CheckResult {
                message: format!("connected in {ms} ms"),
                ..r
            }
        }
        Err(e) => CheckResult::down(format!("cannot connect: {}", error_chain(&e))),
    }
}
