//! HTTP(S) checks: one request on a fresh connection, the status code, a keyword in the first
//! MiB of the body, the response time and the TLS certificate's remaining days.
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use steward_proto::{CheckStatus, HttpCheck, HttpMethod};
use x509_cert::der::Decode;

use crate::target::{Refused, TargetPolicy, literal_host};
use crate::validate::ExpectedStatus;
use crate::{CheckResult, error_chain, timed_out};

/// Most of the body read when looking for a keyword.
pub const BODY_CAP: usize = 1024 * 1024;

fn client(
    h: &HttpCheck,
    timeout: Duration,
    policy: &TargetPolicy,
) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(if h.follow_redirects {
            redirects(policy.clone())
        } else {
            reqwest::redirect::Policy::none()
        })
        // Names are resolved, and the addresses judged, by the policy; a proxy would connect
        // on the check's behalf to addresses the policy never sees.
        .dns_resolver(Arc::new(Guarded(policy.clone())))
        .no_proxy()
        .danger_accept_invalid_certs(!h.verify_tls)
        .tls_info(true)
        // A fresh connection each run, so a run sees what a new visitor sees (the handshake,
        // the certificate) and a dead server is not hidden behind a kept-alive socket.
        .pool_max_idle_per_host(0)
        .user_agent(concat!("Steward-HealthCheck/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Most redirects followed.
const MAX_REDIRECTS: usize = 10;

#[derive(Debug, thiserror::Error)]
#[error("more than {MAX_REDIRECTS} redirects")]
struct TooManyRedirects;

/// Follows at most [`MAX_REDIRECTS`] redirects, none to an address the policy refuses (a
/// name is judged when the next hop resolves it).
fn redirects(policy: TargetPolicy) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(TooManyRedirects);
        }
        match literal_host(attempt.url()).map(|ip| policy.check(ip)) {
            Some(Err(refused)) => attempt.error(refused),
            _ => attempt.follow(),
        }
    })
}

/// Resolves names through the system's resolver (as reqwest does by default) and keeps the
/// addresses the policy allows.
struct Guarded(TargetPolicy);

impl reqwest::dns::Resolve for Guarded {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let allowed = policy.filter(found)?;
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// Whole days from now until the certificate (DER) expires; `None` if it cannot be read.
pub(crate) fn cert_days_left(der: &[u8], now: SystemTime) -> Option<i64> {
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let not_after = cert
        .tbs_certificate
        .validity
        .not_after
        .to_unix_duration()
        .as_secs();
    let now = now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
    let diff = i64::try_from(not_after).ok()? - i64::try_from(now).ok()?;
    Some(diff.div_euclid(86_400))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Reads at most [`BODY_CAP`] bytes of the body.
async fn read_capped(resp: &mut reqwest::Response) -> reqwest::Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = BODY_CAP - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= BODY_CAP {
            break;
        }
    }
    Ok(body)
}

fn request_error(e: &reqwest::Error, timeout: Duration) -> CheckResult {
    // A refused address (of the first request's name, or of a redirect) says only that.
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(refused) = c.downcast_ref::<Refused>() {
            return CheckResult::down(refused.to_string());
        }
        cause = c.source();
    }
    if e.is_timeout() {
        return timed_out(timeout);
    }
    // reqwest's own text repeats the URL, which the check already shows.
    let text = error_chain(e);
    let text = text
        .strip_prefix("error sending request for url (")
        .and_then(|t| t.split_once("): ").map(|(_, rest)| rest))
        .unwrap_or(&text);
    let text = text
        .strip_prefix("client error (Connect): ")
        .unwrap_or(text)
        .to_string();
    CheckResult::down(text)
}

pub(crate) async fn probe(h: &HttpCheck, timeout: Duration, policy: &TargetPolicy) -> CheckResult {
    let expected = match ExpectedStatus::parse(&h.expected_status) {
        Ok(e) => e,
        Err(m) => return CheckResult::down(format!("expected status: {m}")),
    };
    let url = match reqwest::Url::parse(h.url.trim()) {
        Ok(u) => u,
        Err(e) => return CheckResult::down(format!("not a valid URL ({e})")),
    };
    // An address in the URL is connected to without resolving, so it is judged here.
    if let Some(Err(refused)) = literal_host(&url).map(|ip| policy.check(ip)) {
        return CheckResult::down(refused.to_string());
    }
    let client = match client(h, timeout, policy) {
        Ok(c) => c,
        Err(e) => return CheckResult::down(format!("cannot make an HTTP client: {e}")),
    };
    let method = match h.method {
        HttpMethod::Get => reqwest::Method::GET,
        HttpMethod::Head => reqwest::Method::HEAD,
    };
    let start = Instant::now();
    let mut resp = match client.request(method, url).send().await {
        Ok(r) => r,
        Err(e) => return request_error(&e, timeout),
    };
    let code = resp.status().as_u16();
    let cert_days = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|t| t.peer_certificate())
        .and_then(|der| cert_days_left(der, SystemTime::now()));
    let mut keyword_problem = None;
    if let Some(k) = &h.keyword {
        match read_capped(&mut resp).await {
            Ok(body) => {
                let found = contains(&body, k.as_bytes());
                if found && h.keyword_absent {
                    keyword_problem = Some(format!("the body contains “{k}”"));
                } else if !found && !h.keyword_absent {
                    keyword_problem = Some(format!("“{k}” not found in the body"));
                }
            }
            Err(e) => {
                let mut r = request_error(&e, timeout);
                r.http_status = Some(code);
                r.cert_days_left = cert_days;
                return r;
            }
        }
    }
    let mut result = CheckResult::new(CheckStatus::Up, format!("HTTP {code}")).latency(start);
    result.http_status = Some(code);
    result.cert_days_left = cert_days;
    let latency = result.latency_ms.unwrap_or(0);
    let (status, message) = if !expected.accepts(code) {
        (
            CheckStatus::Down,
            format!("HTTP {code}, expected {}", h.expected_status.trim()),
        )
    } else if let Some(problem) = keyword_problem {
        (CheckStatus::Down, format!("HTTP {code}, but {problem}"))
    } else if let Some(d) = cert_days.filter(|d| *d < 0) {
        (
            CheckStatus::Down,
            format!("the TLS certificate expired {} days ago", -d),
        )
    } else if let Some(d) = cert_days.filter(|d| *d < i64::from(h.cert_warn_days)) {
        (
            CheckStatus::Degraded,
            format!("HTTP {code}; the TLS certificate expires in {d} days"),
        )
    } else if let Some(max) = h.max_response_ms.filter(|m| latency > u64::from(*m)) {
        (
            CheckStatus::Degraded,
            format!("HTTP {code} in {latency} ms, slower than {max} ms"),
        )
    } else {
        (CheckStatus::Up, format!("HTTP {code} in {latency} ms"))
    };
    result.status = status;
    result.message = CheckResult::new(status, message).message;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_search() {
        assert!(contains(b"hello world", b"o w"));
        assert!(!contains(b"hello", b"hello!"));
        assert!(contains(b"", b""));
    }
}
