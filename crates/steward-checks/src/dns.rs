//! DNS checks: a lookup of one record type, through the hub's resolvers or a given name
//! server, optionally expecting a value among the answers.
use std::net::IpAddr;
use std::time::{Duration, Instant};

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, ResolverBuilder};
use steward_proto::{CheckStatus, DnsCheck, DnsRecordType};

use crate::target::TargetPolicy;
use crate::validate::resolver_addr;
use crate::{CheckResult, error_chain, timed_out};

fn record_type(t: DnsRecordType) -> RecordType {
    match t {
        DnsRecordType::A => RecordType::A,
        DnsRecordType::Aaaa => RecordType::AAAA,
        DnsRecordType::Cname => RecordType::CNAME,
        DnsRecordType::Mx => RecordType::MX,
        DnsRecordType::Txt => RecordType::TXT,
    }
}

/// An answer as text: an address, a name without the final dot, `10 mail.example.com`, or
/// the TXT strings joined.
fn answer_text(data: &RData) -> Option<String> {
    let name =
        |n: &hickory_resolver::proto::rr::Name| n.to_string().trim_end_matches('.').to_string();
    Some(match data {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::CNAME(c) => name(&c.0),
        RData::MX(mx) => format!("{} {}", mx.preference, name(&mx.exchange)),
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect::<String>(),
        _ => return None,
    })
}

/// Whether an answer is the expected value (addresses compared as addresses, names without
/// case or the final dot, TXT exactly).
fn matches(t: DnsRecordType, answer: &str, expected: &str) -> bool {
    let expected = expected.trim();
    match t {
        DnsRecordType::A | DnsRecordType::Aaaa => {
            match (answer.parse::<IpAddr>(), expected.parse::<IpAddr>()) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            }
        }
        DnsRecordType::Cname | DnsRecordType::Mx => {
            let norm = |s: &str| {
                s.split_whitespace()
                    .map(|w| w.trim_end_matches('.').to_lowercase())
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            norm(answer) == norm(expected)
        }
        DnsRecordType::Txt => answer == expected,
    }
}

fn builder(
    d: &DnsCheck,
    policy: &TargetPolicy,
) -> Result<ResolverBuilder<TokioRuntimeProvider>, String> {
    match &d.resolver {
        // The name server a check names is its target (the hub's own resolvers are not).
        Some(r) => {
            let addr = resolver_addr(r).ok_or_else(|| format!("bad name server address {r}"))?;
            policy
                .check(addr.ip())
                .map_err(|refused| refused.to_string())?;
            let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
            for c in &mut ns.connections {
                c.port = addr.port();
            }
            Ok(Resolver::builder_with_config(
                ResolverConfig::from_parts(None, vec![], vec![ns]),
                TokioRuntimeProvider::default(),
            ))
        }
        None => Resolver::builder_tokio()
            .map_err(|e| format!("cannot read the hub's resolver configuration: {e}")),
    }
}

pub(crate) async fn probe(d: &DnsCheck, timeout: Duration, policy: &TargetPolicy) -> CheckResult {
    let mut b = match builder(d, policy) {
        Ok(b) => b,
        Err(m) => return CheckResult::down(m),
    };
    let opts = b.options_mut();
    // Every run asks the name server: no cache, no hosts file.
    opts.cache_size = 0;
    opts.use_hosts_file = ResolveHosts::Never;
    opts.timeout = timeout;
    opts.attempts = 1;
    let resolver = match b.build() {
        Ok(r) => r,
        Err(e) => return CheckResult::down(format!("cannot make a resolver: {e}")),
    };
    // A fully qualified name, so search domains never apply.
    let mut name = d.name.trim().to_string();
    if !name.ends_with('.') {
        name.push('.');
    }
    let kind = d.record_type.as_str();
    let start = Instant::now();
    let lookup = match resolver
        .lookup(name.as_str(), record_type(d.record_type))
        .await
    {
        Ok(l) => l,
        Err(e) if e.is_nx_domain() => {
            return CheckResult::down(format!("{} does not exist (NXDOMAIN)", d.name.trim()));
        }
        Err(e) if e.is_no_records_found() => {
            return CheckResult::down(format!("no {kind} records for {}", d.name.trim()));
        }
        Err(hickory_resolver::net::NetError::Timeout) => return timed_out(timeout),
        Err(e) => return CheckResult::down(format!("lookup failed: {}", error_chain(&e))),
    };
    let answers: Vec<String> = lookup
        .answers()
        .iter()
        .filter(|r| r.data.record_type() == record_type(d.record_type))
        .filter_map(|r| answer_text(&r.data))
        .collect();
    let r = CheckResult::new(CheckStatus::Up, "").latency(start);
    if answers.is_empty() {
        return CheckResult {
            status: CheckStatus::Down,
            ..CheckResult::down(format!("no {kind} records for {}", d.name.trim()))
        };
    }
    let list = answers.join(", ");
    match &d.expected {
        Some(e) if !answers.iter().any(|a| matches(d.record_type, a, e)) => CheckResult {
            status: CheckStatus::Down,
            message: CheckResult::down(format!("expected {}, got {kind} {list}", e.trim())).message,
            ..r
        },
        _ => CheckResult {
            message: CheckResult::down(format!("{kind} {list}")).message,
            ..r
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_values() {
        assert!(matches(DnsRecordType::Aaaa, "::1", "0:0::1"));
        assert!(!matches(DnsRecordType::A, "192.0.2.1", "192.0.2.2"));
        assert!(matches(
            DnsRecordType::Mx,
            "10 mail.example.com",
            "10  Mail.Example.com."
        ));
        assert!(matches(
            DnsRecordType::Cname,
            "a.example.com",
            "A.example.com."
        ));
        assert!(!matches(DnsRecordType::Txt, "v=spf1", "V=SPF1"));
    }
}
