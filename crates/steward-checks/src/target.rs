//! Which addresses a check may reach. A check is a request the hub makes on someone's behalf
//! (server-side request forgery by design), so by default it may not reach the hub itself, its
//! link-local neighbours (cloud metadata services among them) or anything that is not one
//! host: loopback, unspecified, link-local, multicast and broadcast addresses, the well-known
//! cloud metadata addresses outside link-local, and the hub's own addresses. Private networks
//! (10/8, 172.16/12, 192.168/16, fc00::/7) stay normal targets: checking a managed server's
//! LAN address is the main use of checks. An allow-list of networks, set by an administrator,
//! re-enables any of these.
//!
//! The rule is applied where connections are made, to the addresses a name resolved to and
//! on every redirect hop ([`TargetPolicy::check`]), so a name that resolves to loopback or a
//! redirect to it is refused like an address written in the check.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;
use steward_proto::CheckSpec;

use crate::validate::{SpecError, resolver_addr};

/// Why an address is not a check target unless allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restriction {
    /// `0.0.0.0/8`, `::` (on Linux, a connection to them reaches the hub itself).
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `169.254.0.0/16`, `fe80::/10` (cloud metadata services live at 169.254.169.254).
    LinkLocal,
    /// Multicast and broadcast: not one host.
    NotOneHost,
    /// A cloud metadata address outside link-local (`fd00:ec2::254`, `100.100.100.200`,
    /// `168.63.129.16`).
    Metadata,
    /// An address of the hub's own interfaces, or the address it listens on.
    Hub,
}

impl Restriction {
    /// In a sentence: `loopback`, `the hub's own address` …
    pub fn as_str(self) -> &'static str {
        match self {
            Restriction::Unspecified => "unspecified",
            Restriction::Loopback => "loopback",
            Restriction::LinkLocal => "link-local",
            Restriction::NotOneHost => "multicast or broadcast",
            Restriction::Metadata => "cloud metadata",
            Restriction::Hub => "the hub's own address",
        }
    }
}

/// A target address the policy refuses; its text is the check's result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "target address {addr} ({}) is not allowed for checks; an administrator can allow it in Settings",
    .why.as_str()
)]
pub struct Refused {
    pub addr: IpAddr,
    pub why: Restriction,
}

/// The addresses checks may reach: everything but the restricted ones, unless the allow-list
/// names them. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct TargetPolicy {
    allow: Vec<IpNet>,
    hub: Vec<IpAddr>,
}

impl TargetPolicy {
    /// A policy with the allowed networks and the hub's own addresses.
    pub fn new(allow: Vec<IpNet>, hub: impl IntoIterator<Item = IpAddr>) -> Self {
        Self {
            allow,
            hub: hub.into_iter().map(canonical).collect(),
        }
    }

    /// A policy that refuses only the fixed ranges (no hub addresses known) but allows
    /// `allow` (for tests and tools).
    pub fn allowing(allow: impl IntoIterator<Item = IpNet>) -> Self {
        Self::new(allow.into_iter().collect(), [])
    }

    /// Whether a check may connect to `ip`.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refused> {
        let canon = canonical(ip);
        let why =
            restriction(canon).or_else(|| self.hub.contains(&canon).then_some(Restriction::Hub));
        match why {
            None => Ok(()),
            Some(_)
                if self
                    .allow
                    .iter()
                    .any(|n| n.contains(&ip) || n.contains(&canon)) =>
            {
                Ok(())
            }
            Some(why) => Err(Refused { addr: ip, why }),
        }
    }

    /// The allowed ones of the addresses a name resolved to; refused when none is allowed
    /// (naming the first refused address).
    pub fn filter(
        &self,
        addrs: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<Vec<SocketAddr>, Refused> {
        let mut first_refused = None;
        let mut allowed = Vec::new();
        for a in addrs {
            match self.check(a.ip()) {
                Ok(()) => allowed.push(a),
                Err(r) => {
                    first_refused.get_or_insert(r);
                }
            }
        }
        match first_refused {
            Some(r) if allowed.is_empty() => Err(r),
            _ => Ok(allowed),
        }
    }

    /// Refuses a definition that names a restricted address outright (an IP address in the
    /// URL, the TCP host or the DNS name server); names are judged when a run resolves them.
    pub fn check_spec(&self, spec: &CheckSpec) -> Result<(), SpecError> {
        let (field, ip) = match spec {
            CheckSpec::Http(h) => (
                "url",
                reqwest::Url::parse(h.url.trim())
                    .ok()
                    .as_ref()
                    .and_then(literal_host),
            ),
            CheckSpec::Tcp(t) => ("host", ip_literal(t.host.trim())),
            CheckSpec::Dns(d) => (
                "resolver",
                d.resolver
                    .as_deref()
                    .and_then(resolver_addr)
                    .map(|a| a.ip()),
            ),
        };
        match ip.map(|ip| self.check(ip)) {
            Some(Err(r)) => Err(SpecError {
                field: format!("spec.{field}"),
                message: r.to_string(),
            }),
            _ => Ok(()),
        }
    }
}

/// A network of an allow-list: `10.0.0.0/8`, `fd00::/8`, or one address (`127.0.0.1`,
/// `::1`). Host bits are cleared (`10.1.2.3/8` is `10.0.0.0/8`).
pub fn parse_network(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    let net = match s.parse::<IpNet>() {
        Ok(n) => n,
        Err(_) => s
            .parse::<IpAddr>()
            .map(IpNet::from)
            .map_err(|_| format!("`{s}` is not a network (10.0.0.0/8, fd00::/8) or an address"))?,
    };
    Ok(net.trunc())
}

/// `1.2.3.4`, `::1` or `[::1]` as an address.
fn ip_literal(host: &str) -> Option<IpAddr> {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .parse()
        .ok()
}

/// The URL's host when it is an IP address (the URL parser has already turned forms such as
/// `127.1` or `2130706433` into `127.0.0.1`).
pub(crate) fn literal_host(url: &reqwest::Url) -> Option<IpAddr> {
    ip_literal(url.host_str()?)
}

/// An IPv6 address that carries an IPv4 one (IPv4-mapped `::ffff:a.b.c.d`, the old
/// IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`) as that IPv4 address; others as they
/// are.
pub fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    if v6.is_loopback() || v6.is_unspecified() {
        return ip;
    }
    let s = v6.segments();
    let embedded = || {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    };
    match s {
        [0, 0, 0, 0, 0, 0xffff, ..] | [0, 0, 0, 0, 0, 0, ..] | [0x64, 0xff9b, 0, 0, 0, 0, ..] => {
            embedded()
        }
        _ => ip,
    }
}

const METADATA_V4: [Ipv4Addr; 2] = [
    // Alibaba Cloud.
    Ipv4Addr::new(100, 100, 100, 200),
    // Azure's WireServer.
    Ipv4Addr::new(168, 63, 129, 16),
];
// AWS's instance metadata over IPv6.
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

/// The fixed restriction of a (canonical) address, if any.
fn restriction(ip: IpAddr) -> Option<Restriction> {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if o[0] == 0 {
                Some(Restriction::Unspecified)
            } else if v4.is_loopback() {
                Some(Restriction::Loopback)
            } else if v4.is_link_local() {
                Some(Restriction::LinkLocal)
            } else if v4.is_multicast() || v4.is_broadcast() {
                Some(Restriction::NotOneHost)
            } else if METADATA_V4.contains(&v4) {
                Some(Restriction::Metadata)
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if v6.is_unspecified() {
                Some(Restriction::Unspecified)
            } else if v6.is_loopback() {
                Some(Restriction::Loopback)
            } else if v6.is_unicast_link_local() {
                Some(Restriction::LinkLocal)
            } else if v6.is_multicast() {
                Some(Restriction::NotOneHost)
            } else if v6 == METADATA_V6 {
                Some(Restriction::Metadata)
            } else {
                None
            }
        }
    }
}

/// The addresses of the hub's network interfaces (empty if they cannot be read).
pub fn interface_addresses() -> Vec<IpAddr> {
    let Ok(ifaddrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    ifaddrs
        .filter_map(|i| i.address)
        .filter_map(|a| {
            a.as_sockaddr_in()
                .map(|v4| IpAddr::V4(v4.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
        })
        .collect()
}

/// The hub's own addresses: those it listens on (recorded when it starts listening) and its
/// interfaces' (read again each time, so a new DHCP lease counts at once).
#[derive(Debug, Default)]
pub struct HubAddresses {
    listen: std::sync::RwLock<Vec<IpAddr>>,
}

impl HubAddresses {
    /// Records an address the hub listens on.
    pub fn add_listen(&self, ip: IpAddr) {
        let mut l = self.listen.write().unwrap_or_else(|e| e.into_inner());
        if !l.contains(&ip) {
            l.push(ip);
        }
    }

    /// Every address the hub is known by, now.
    pub fn current(&self) -> Vec<IpAddr> {
        let mut all = interface_addresses();
        all.extend(
            self.listen
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .copied(),
        );
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn restricted_by_default() {
        let p = TargetPolicy::default();
        for (addr, why) in [
            ("127.0.0.1", Restriction::Loopback),
            ("127.255.0.9", Restriction::Loopback),
            ("::1", Restriction::Loopback),
            ("::ffff:127.0.0.1", Restriction::Loopback),
            ("::127.0.0.1", Restriction::Loopback),
            ("64:ff9b::7f00:1", Restriction::Loopback),
            ("0.0.0.0", Restriction::Unspecified),
            ("0.1.2.3", Restriction::Unspecified),
            ("::", Restriction::Unspecified),
            ("::ffff:0.0.0.0", Restriction::Unspecified),
            ("169.254.169.254", Restriction::LinkLocal),
            ("::ffff:169.254.169.254", Restriction::LinkLocal),
            ("fe80::1", Restriction::LinkLocal),
            ("febf::1", Restriction::LinkLocal),
            ("224.0.0.251", Restriction::NotOneHost),
            ("255.255.255.255", Restriction::NotOneHost),
            ("ff02::fb", Restriction::NotOneHost),
            ("fd00:ec2::254", Restriction::Metadata),
            ("100.100.100.200", Restriction::Metadata),
        ] {
            assert_eq!(
                p.check(ip(addr)),
                Err(Refused {
                    addr: ip(addr),
                    why
                }),
                "{addr}"
            );
        }
        for addr in [
            "10.0.0.5",
            "172.16.1.1",
            "192.168.1.10",
            "fd12:3456::1",
            "192.0.2.1",
            "2001:db8::1",
            "fec0::1",
            "100.64.0.1",
        ] {
            assert_eq!(p.check(ip(addr)), Ok(()), "{addr}");
        }
    }

    #[test]
    fn the_hub_and_the_allow_list() {
        let hub = TargetPolicy::new(vec![], [ip("192.168.1.10"), ip("::ffff:10.0.0.7")]);
        assert_eq!(
            hub.check(ip("192.168.1.10")).unwrap_err().why,
            Restriction::Hub
        );
        assert_eq!(
            hub.check(ip("::ffff:192.168.1.10")).unwrap_err().why,
            Restriction::Hub
        );
        assert_eq!(hub.check(ip("10.0.0.7")).unwrap_err().why, Restriction::Hub);
        assert_eq!(hub.check(ip("192.168.1.11")), Ok(()));

        let allowed = TargetPolicy::new(
            vec![
                "127.0.0.0/8".parse().unwrap(),
                "192.168.1.10/32".parse().unwrap(),
            ],
            [ip("192.168.1.10")],
        );
        assert_eq!(allowed.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(allowed.check(ip("::ffff:127.0.0.1")), Ok(()));
        assert_eq!(allowed.check(ip("192.168.1.10")), Ok(()));
        assert!(
            allowed.check(ip("::1")).is_err(),
            "::1 is not in 127.0.0.0/8"
        );
        assert!(allowed.check(ip("169.254.169.254")).is_err());
    }

    #[test]
    fn allow_list_entries() {
        assert_eq!(
            parse_network("10.1.2.3/8"),
            Ok("10.0.0.0/8".parse().unwrap())
        );
        assert_eq!(
            parse_network(" 127.0.0.1 "),
            Ok("127.0.0.1/32".parse().unwrap())
        );
        assert_eq!(parse_network("::1"), Ok("::1/128".parse().unwrap()));
        assert_eq!(parse_network("fe80::/10"), Ok("fe80::/10".parse().unwrap()));
        for bad in ["", "localhost", "10.0.0.0/33", "10.0.0/8", "*"] {
            assert!(parse_network(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn filtering_resolved_addresses() {
        let p = TargetPolicy::default();
        let sa = |s: &str| SocketAddr::new(ip(s), 80);
        assert_eq!(
            p.filter([sa("127.0.0.1"), sa("192.0.2.1")]),
            Ok(vec![sa("192.0.2.1")])
        );
        assert_eq!(
            p.filter([sa("::1"), sa("127.0.0.1")]).unwrap_err().addr,
            ip("::1")
        );
        assert_eq!(p.filter([]), Ok(vec![]));
    }

    #[test]
    fn literal_targets_in_definitions() {
        let p = TargetPolicy::default();
        let spec = |v: serde_json::Value| -> CheckSpec { serde_json::from_value(v).unwrap() };
        for (s, field) in [
            (
                serde_json::json!({ "type": "http", "url": "http://127.0.0.1:8080/metrics" }),
                "spec.url",
            ),
            (
                serde_json::json!({ "type": "http", "url": "http://127.1/" }),
                "spec.url",
            ),
            (
                serde_json::json!({ "type": "http", "url": "http://2130706433/" }),
                "spec.url",
            ),
            (
                serde_json::json!({ "type": "http", "url": "http://[::ffff:7f00:1]/" }),
                "spec.url",
            ),
            (
                serde_json::json!({ "type": "tcp", "host": "[::1]", "port": 5432 }),
                "spec.host",
            ),
            (
                serde_json::json!({ "type": "tcp", "host": "169.254.169.254", "port": 80 }),
                "spec.host",
            ),
            (
                serde_json::json!({ "type": "dns", "name": "example.com", "resolver": "127.0.0.53" }),
                "spec.resolver",
            ),
        ] {
            let e = p.check_spec(&spec(s.clone())).unwrap_err();
            assert_eq!(e.field, field, "{s}");
            assert!(e.message.contains("is not allowed for checks"), "{e}");
        }
        for s in [
            serde_json::json!({ "type": "http", "url": "http://localhost/" }),
            serde_json::json!({ "type": "tcp", "host": "10.0.0.1", "port": 22 }),
            serde_json::json!({ "type": "dns", "name": "example.com" }),
        ] {
            assert_eq!(p.check_spec(&spec(s.clone())), Ok(()), "{s}");
        }
    }

    #[test]
    fn the_hubs_addresses() {
        let hub = HubAddresses::default();
        // Every Linux machine has lo with 127.0.0.1.
        assert!(hub.current().contains(&ip("127.0.0.1")));
        hub.add_listen(ip("198.51.100.7"));
        hub.add_listen(ip("198.51.100.7"));
        let all = hub.current();
        assert_eq!(all.iter().filter(|a| **a == ip("198.51.100.7")).count(), 1);
        assert_eq!(
            TargetPolicy::new(vec![], all)
                .check(ip("198.51.100.7"))
                .unwrap_err()
                .why,
            Restriction::Hub
        );
    }
}
