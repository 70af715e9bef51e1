//! Listening TCP ports, from `ss -ltnp` or, without `ss`, from `/proc/net/tcp{,6}`.
use std::net::{Ipv4Addr, Ipv6Addr};

use steward_proto::ListeningPort;

/// Splits `addr:port` as `ss` prints it (`0.0.0.0:22`, `[::]:22`, `*:22`, `127.0.0.53%lo:53`).
fn split_address(local: &str) -> Option<(String, u16)> {
    let (addr, port) = local.rsplit_once(':')?;
    let port = port.parse::<u16>().ok()?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    let addr = addr.split('%').next().unwrap_or(addr);
    if addr.is_empty() {
        return None;
    }
    Some((addr.to_string(), port))
}

/// The first `("name",pid=N,…)` of an `ss -p` process column.
fn ss_process(line: &str) -> (Option<String>, Option<u32>) {
    let Some(users) = line.find("users:((") else {
        return (None, None);
    };
    let rest = &line[users + "users:((".len()..];
    let name = rest
        .strip_prefix('"')
        .and_then(|r| r.split_once('"'))
        .map(|(n, _)| n.to_string())
        .filter(|n| !n.is_empty());
    let pid = rest
        .split_once("pid=")
        .and_then(|(_, r)| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok());
    (name, pid)
}

fn sort_ports(ports: &mut Vec<ListeningPort>) {
    ports.sort_by(|a, b| (a.port, &a.address).cmp(&(b.port, &b.address)));
    ports.dedup_by(|a, b| a.port == b.port && a.address == b.address);
}

/// `ss -ltnp` (with or without its header line).
pub fn parse_ss(lines: &[String]) -> Vec<ListeningPort> {
    let mut ports = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        // State Recv-Q Send-Q Local Peer [Process]; some versions omit the state with -l.
        let local = match f.first() {
            Some(&"LISTEN") => f.get(3),
            Some(s) if s.parse::<u64>().is_ok() => f.get(2),
            _ => None,
        };
        let Some((address, port)) = local.and_then(|l| split_address(l)) else {
            continue;
        };
        let (process, pid) = ss_process(line);
        ports.push(ListeningPort {
            address,
            port,
            process,
            pid,
        });
    }
    sort_ports(&mut ports);
    ports
}

fn hex_ipv4(h: &str) -> Option<String> {
    let n = u32::from_str_radix(h, 16).ok()?;
    Some(Ipv4Addr::from(n.swap_bytes()).to_string())
}

fn hex_ipv6(h: &str) -> Option<String> {
    if h.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for word in 0..4 {
        let w = u32::from_str_radix(h.get(word * 8..word * 8 + 8)?, 16).ok()?;
        bytes[word * 4..word * 4 + 4].copy_from_slice(&w.swap_bytes().to_be_bytes());
    }
    Some(Ipv6Addr::from(bytes).to_string())
}

/// `/proc/net/tcp` and `/proc/net/tcp6`: sockets in state `0A` (LISTEN).
pub fn parse_proc_net_tcp(lines: &[String]) -> Vec<ListeningPort> {
    let mut ports = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 || f[3] != "0A" {
            continue;
        }
        let Some((addr, port)) = f[1].split_once(':') else {
            continue;
        };
        let address = if addr.len() == 8 {
            hex_ipv4(addr)
        } else {
            hex_ipv6(addr)
        };
        let (Some(address), Ok(port)) = (address, u16::from_str_radix(port, 16)) else {
            continue;
        };
        ports.push(ListeningPort {
            address,
            port,
            process: None,
            pid: None,
        });
    }
    sort_ports(&mut ports);
    ports
}
