//! What makes a check definition valid, and the expected-status syntax (`200-299,301`).
use std::net::{IpAddr, SocketAddr};

use steward_core::validate::Host;
use steward_proto::{CheckSpec, DnsCheck, HttpCheck, HttpMethod, TcpCheck};

/// A field of a check definition that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {message}")]
pub struct SpecError {
    /// `spec.url`, `spec.port` …
    pub field: String,
    pub message: String,
}

fn err(field: &str, message: impl Into<String>) -> SpecError {
    SpecError {
        field: format!("spec.{field}"),
        message: message.into(),
    }
}

/// The status codes an HTTP check accepts: codes and inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedStatus(Vec<(u16, u16)>);

impl ExpectedStatus {
    /// Parses `200`, `200-299`, `200-299,301,302` (spaces allowed). At most 20 parts, codes
    /// 100 to 599.
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        if s.trim().is_empty() || parts.len() > 20 {
            return Err("must be 1 to 20 codes or ranges like 200-299, separated by commas".into());
        }
        let code = |t: &str| -> Result<u16, String> {
            t.trim()
                .parse::<u16>()
                .ok()
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(|| format!("`{t}` is not an HTTP status code (100 to 599)"))
        };
        let mut ranges = Vec::with_capacity(parts.len());
        for p in parts {
            let range = match p.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (code(a)?, code(b)?);
                    if a > b {
                        return Err(format!("`{p}` is an empty range"));
                    }
                    (a, b)
                }
                None => {
                    let c = code(p)?;
                    (c, c)
                }
            };
            ranges.push(range);
        }
        Ok(Self(ranges))
    }

    /// Whether `status` is accepted.
    pub fn accepts(&self, status: u16) -> bool {
        self.0.iter().any(|(a, b)| (*a..=*b).contains(&status))
    }
}

fn check_text(field: &str, s: &str, max: usize) -> Result<(), SpecError> {
    if s.chars().count() > max {
        return Err(err(field, format!("must be at most {max} characters")));
    }
    if s.chars().any(char::is_control) {
        return Err(err(field, "must not contain control characters"));
    }
    Ok(())
}

fn http(h: &HttpCheck) -> Result<(), SpecError> {
    check_text("url", &h.url, 2048)?;
    let url = reqwest::Url::parse(h.url.trim())
        .map_err(|e| err("url", format!("is not a valid URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(err("url", "must start with http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(err("url", "must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // The definition is shown to everyone who can see the check.
        return Err(err("url", "must not contain a user name or password"));
    }
    ExpectedStatus::parse(&h.expected_status).map_err(|m| err("expected_status", m))?;
    if let Some(k) = &h.keyword {
        if k.is_empty() {
            return Err(err("keyword", "must not be empty (leave it out instead)"));
        }
        check_text("keyword", k, 200)?;
        if h.method == HttpMethod::Head {
            return Err(err("keyword", "cannot be searched in a HEAD response"));
        }
    } else if h.keyword_absent {
        return Err(err("keyword_absent", "needs a keyword"));
    }
    if let Some(ms) = h.max_response_ms
        && !(1..=600_000).contains(&ms)
    {
        return Err(err("max_response_ms", "must be 1 to 600000"));
    }
    if h.cert_warn_days > 365 {
        return Err(err("cert_warn_days", "must be 0 to 365"));
    }
    Ok(())
}

fn tcp(t: &TcpCheck) -> Result<(), SpecError> {
    Host::parse(&t.host).map_err(|e| err("host", e.message))?;
    if t.port == 0 {
        return Err(err("port", "must be between 1 and 65535"));
    }
    Ok(())
}

/// Whether `name` is a DNS name (labels of letters, digits, `-` and `_`; a final dot allowed).
fn is_dns_name(name: &str) -> bool {
    let n = name.strip_suffix('.').unwrap_or(name);
    !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// The name server address of a DNS check: `ip`, `ip:port` or `[v6]:port` (port 53 when
/// absent).
pub(crate) fn resolver_addr(s: &str) -> Option<SocketAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 53));
    }
    if let Some(ip) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return ip.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53));
    }
    s.parse::<SocketAddr>().ok().filter(|a| a.port() != 0)
}

fn dns(d: &DnsCheck) -> Result<(), SpecError> {
    if !is_dns_name(d.name.trim()) {
        return Err(err("name", "is not a valid DNS name"));
    }
    if let Some(r) = &d.resolver
        && resolver_addr(r).is_none()
    {
        return Err(err(
            "resolver",
            "must be an IP address, optionally with a port (192.0.2.53:5353, [2001:db8::53]:53)",
        ));
    }
    if let Some(e) = &d.expected {
        if e.trim().is_empty() {
            return Err(err("expected", "must not be empty (leave it out instead)"));
        }
        check_text("expected", e, 500)?;
    }
    Ok(())
}

/// Checks a definition; the first problem found names its field (`spec.url`).
pub fn validate(spec: &CheckSpec) -> Result<(), SpecError> {
    match spec {
        CheckSpec::Http(h) => http(h),
        CheckSpec::Tcp(t) => tcp(t),
        CheckSpec::Dns(d) => dns(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_status_syntax() {
        let e = ExpectedStatus::parse("200-299, 301,404").unwrap();
        assert!(e.accepts(200) && e.accepts(299) && e.accepts(301) && e.accepts(404));
        assert!(!e.accepts(300) && !e.accepts(500));
        for bad in ["", "2xx", "200-", "299-200", "600", "99", "1,2"] {
            assert!(ExpectedStatus::parse(bad).is_err(), "{bad}");
        }
        assert!(ExpectedStatus::parse(&vec!["200"; 21].join(",")).is_err());
    }

    #[test]
    fn resolver_addresses() {
        assert_eq!(
            resolver_addr("127.0.0.1"),
            Some("127.0.0.1:53".parse().unwrap())
        );
        assert_eq!(
            resolver_addr("127.0.0.1:5353"),
            Some("127.0.0.1:5353".parse().unwrap())
        );
        assert_eq!(resolver_addr("[::1]:54"), Some("[::1]:54".parse().unwrap()));
        assert_eq!(resolver_addr("::1"), Some("[::1]:53".parse().unwrap()));
        assert_eq!(resolver_addr("dns.example.com"), None);
        assert_eq!(resolver_addr("127.0.0.1:0"), None);
    }

    fn http_spec(url: &str) -> HttpCheck {
        serde_json::from_value(serde_json::json!({ "url": url })).unwrap()
    }

    #[test]
    fn http_definitions() {
        assert!(validate(&CheckSpec::Http(http_spec("https://example.com/health"))).is_ok());
        let field = |h: HttpCheck| validate(&CheckSpec::Http(h)).unwrap_err().field;
        assert_eq!(field(http_spec("ftp://example.com")), "spec.url");
        assert_eq!(field(http_spec("https://user:pw@example.com")), "spec.url");
        assert_eq!(field(http_spec("not a url")), "spec.url");
        let mut h = http_spec("http://example.com");
        h.method = HttpMethod::Head;
        h.keyword = Some("ok".into());
        assert_eq!(field(h), "spec.keyword");
        let mut h = http_spec("http://example.com");
        h.keyword_absent = true;
        assert_eq!(field(h), "spec.keyword_absent");
        let mut h = http_spec("http://example.com");
        h.expected_status = "abc".into();
        assert_eq!(field(h), "spec.expected_status");
    }

    #[test]
    fn dns_and_tcp_definitions() {
        let dns = |name: &str| {
            CheckSpec::Dns(DnsCheck {
                name: name.into(),
                record_type: Default::default(),
                resolver: None,
                expected: None,
            })
        };
        assert!(validate(&dns("_dmarc.example.com.")).is_ok());
        assert!(validate(&dns("bad name")).is_err());
        assert!(validate(&dns("a..b")).is_err());
        let tcp = |host: &str, port| {
            CheckSpec::Tcp(TcpCheck {
                host: host.into(),
                port,
            })
        };
        assert!(validate(&tcp("db.internal", 5432)).is_ok());
        assert_eq!(
            validate(&tcp("db.internal", 0)).unwrap_err().field,
            "spec.port"
        );
        assert_eq!(
            validate(&tcp("bad host!", 1)).unwrap_err().field,
            "spec.host"
        );
    }
}
