//! TCP checks: a connection to the port is accepted (then closed at once).
use std::time::Instant;

use steward_proto::{CheckStatus, TcpCheck};

use crate::target::TargetPolicy;
use crate::{CheckResult, error_chain};

pub(crate) async fn probe(t: &TcpCheck, policy: &TargetPolicy) -> CheckResult {
    let host = t.host.trim();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let start = Instant::now();
    // Resolved here, not by the connect, so every address is judged before it is tried.
    let found = match tokio::net::lookup_host((host, t.port)).await {
        Ok(found) => found,
        Err(e) => return CheckResult::down(format!("cannot resolve {host}: {}", error_chain(&e))),
    };
    let addrs = match policy.filter(found) {
        Ok(a) if a.is_empty() => return CheckResult::down(format!("{host} has no address")),
        Ok(a) => a,
        Err(refused) => return CheckResult::down(refused.to_string()),
    };
    let mut last_error = None;
    for addr in addrs {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(stream) => {
                drop(stream);
                let r = CheckResult::new(CheckStatus::Up, "").latency(start);
                let ms = r.latency_ms.unwrap_or(0);
                return CheckResult {
                    message: format!("connected in {ms} ms"),
                    ..r
                };
            }
            Err(e) => last_error = Some(e),
        }
    }
    let why = last_error.map_or_else(|| "no address".to_string(), |e| error_chain(&e));
    CheckResult::down(format!("cannot connect: {why}"))
}
