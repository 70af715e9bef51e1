//! The health-check engine: runs one probe described by a [`CheckSpec`] (an HTTP(S) request, a
//! TCP connect or a DNS lookup) from the hub and says whether the target is up, degraded or
//! down. No database and no scheduling here: the API stores the results and runs checks on
//! their intervals.
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used)]

mod dns;
mod http;
mod target;
mod tcp;
mod validate;

use std::time::{Duration, Instant};

pub use steward_proto::{CheckSpec, CheckStatus};
pub use target::{
    HubAddresses, Refused, Restriction, TargetPolicy, canonical, interface_addresses, parse_network,
};
pub use validate::{ExpectedStatus, SpecError, validate};

/// Longest text kept in a result's message.
pub const MESSAGE_MAX: usize = 300;

/// The outcome of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub status: CheckStatus,
    /// How long the probe took, when the target answered (HTTP: until the headers, or the
    /// end of the body read when a keyword is searched).
    pub latency_ms: Option<u64>,
    /// What happened, in a short sentence (at most [`MESSAGE_MAX`] characters).
    pub message: String,
    /// The HTTP status code of the final response.
    pub http_status: Option<u16>,
    /// Whole days until the server's TLS certificate expires (negative once expired).
    pub cert_days_left: Option<i64>,
}

impl CheckResult {
    pub(crate) fn new(status: CheckStatus, message: impl Into<String>) -> Self {
        let mut message: String = message.into();
        if message.chars().count() > MESSAGE_MAX {
            message = message.chars().take(MESSAGE_MAX - 1).collect::<String>() + "…";
        }
        Self {
            status,
            latency_ms: None,
            message,
            http_status: None,
            cert_days_left: None,
        }
    }

    pub(crate) fn down(message: impl Into<String>) -> Self {
        Self::new(CheckStatus::Down, message)
    }

    pub(crate) fn latency(mut self, since: Instant) -> Self {
        self.latency_ms = Some(u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX));
        self
    }
}

/// Runs the probe once, connecting only to addresses `policy` allows (a refused one makes the
/// run down, saying so). The whole run, name resolution included, is bounded by `timeout`; a
/// probe that takes longer is down. Never fails: every problem is a down result saying why.
pub async fn run(spec: &CheckSpec, timeout: Duration, policy: &TargetPolicy) -> CheckResult {
    let probe = async {
        match spec {
            CheckSpec::Http(h) => http::probe(h, timeout, policy).await,
            CheckSpec::Tcp(t) => tcp::probe(t, policy).await,
            CheckSpec::Dns(d) => dns::probe(d, timeout, policy).await,
        }
    };
    // A little slack, so that the probe's own (more precise) timeout wins where it has one.
    match tokio::time::timeout(timeout + Duration::from_millis(250), probe).await {
        Ok(result) => result,
        Err(_) => timed_out(timeout),
    }
}

pub(crate) fn timed_out(timeout: Duration) -> CheckResult {
    CheckResult::down(format!(
        "no answer within {}",
        if timeout.subsec_millis() == 0 {
            format!("{} s", timeout.as_secs())
        } else {
            format!("{} ms", timeout.as_millis())
        }
    ))
}

/// An error and its causes, as one line (`a: b: c`), without repeats.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    parts.join(": ")
}
