//! The agent's wire protocol: JSON text frames over one WebSocket that the agent opens to
//! the hub.
//!
//! ```text
//! agent                                          hub
//!   GET /api/v1/agent/connect  (WebSocket upgrade,
//!       Authorization: Bearer <enrollment token>)  ─▶  401 for an unknown or revoked token
//!   {"type":"hello", protocol, agent_version,
//!    hostname, os, arch, kernel}                   ─▶
//!                                                  ◀─  {"type":"welcome", server_id,
//!                                                       interval_secs, last_seq}
//!   {"type":"samples", seq, dropped?, snapshots:[…]} ─▶  stores, then
//!                                                  ◀─  {"type":"ack", seq}
//!                                                  ◀─  {"type":"config", interval_secs}  (any time)
//! ```
//!
//! **Sequence numbers and backfill.** A batch's `seq` orders it for the hub; the hub keeps
//! the highest `seq` it stored for the agent (`last_seq`). The hub stores a batch only if its
//! `seq` is above `last_seq` (then `last_seq = seq`) and acknowledges every batch, stored or
//! already stored, so a resent batch is harmless; a batch it failed to store is not
//! acknowledged (the hub closes the connection instead, and the agent resends it after
//! reconnecting). The agent numbers batches when it first
//! sends them, from `last_seq + 1` of the welcome. After a reconnect, the welcome's `last_seq`
//! tells it which of the batches it sent but saw no ack for were stored (those with
//! `seq <= last_seq`: dropped) and which were not (renumbered from `last_seq + 1` and resent,
//! oldest first). Numbering from the hub's `last_seq`, not the agent's own counter, is what
//! keeps a restarted agent (counter back at 0) from having its new batches taken for
//! duplicates. Snapshot timestamps within a batch strictly increase, and a batch's first
//! follows the previous batch's last; the hub may also drop any snapshot not newer than the
//! newest it holds for the server, which guards against a second agent with the same token.
//!
//! **Gaps.** An agent that had to drop buffered snapshots (its buffer holds one hour) says how
//! many in `dropped` on the next batch it sends, so the hub knows the hole is not an outage of
//! the host.
//!
//! **Compatibility.** Unknown fields are ignored and unknown message types are skipped on both
//! sides; `protocol` in the hello lets a hub refuse an agent it cannot serve (close code 1008
//! with a reason).

use serde::{Deserialize, Serialize};

use crate::snapshot::RawSnapshot;

/// The protocol revision this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The WebSocket endpoint, relative to the hub's base URL.
pub const CONNECT_PATH: &str = "/api/v1/agent/connect";

/// Collection interval bounds, seconds.
pub const MIN_INTERVAL_SECS: u32 = 1;
pub const MAX_INTERVAL_SECS: u32 = 60;

/// Most snapshots in one `samples` message. The agent sends at most 60.
pub const MAX_BATCH_SNAPSHOTS: usize = 120;

/// Largest frame either side needs to accept (a batch of a many-core host).
pub const MAX_MESSAGE_BYTES: usize = 8 << 20;

/// An interval brought into bounds.
pub fn clamp_interval(secs: u32) -> u32 {
    secs.clamp(MIN_INTERVAL_SECS, MAX_INTERVAL_SECS)
}

/// Frames the agent sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentMessage {
    Hello(Hello),
    Samples(Samples),
}

/// The agent introduces itself; sent once, first, on every connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    #[serde(default)]
    pub protocol: u32,
    pub agent_version: String,
    pub hostname: String,
    /// `PRETTY_NAME` of `/etc/os-release` (`"Debian GNU/Linux 13 (trixie)"`).
    pub os: String,
    /// `x86_64`, `aarch64`, …
    pub arch: String,
    /// Kernel release (`6.12.38+deb13-amd64`).
    pub kernel: String,
}

/// A batch of snapshots, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Samples {
    pub seq: u64,
    /// Snapshots the agent dropped just before this batch (buffer full).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped: u64,
    pub snapshots: Vec<RawSnapshot>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Frames the hub sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HubMessage {
    /// The first frame after the upgrade (the hub may wait for the hello first).
    Welcome {
        server_id: String,
        interval_secs: u32,
        /// The highest batch `seq` stored for this agent, 0 for none.
        last_seq: u64,
    },
    /// Batch `seq` is stored (or was already).
    Ack { seq: u64 },
    /// Collect at a new interval from now on.
    Config { interval_secs: u32 },
}

/// A `samples` frame around snapshots that are already JSON (`[{…},{…}]`): the agent keeps
/// its buffer serialized and sends it without building the values again. The result reads
/// back as [`AgentMessage::Samples`].
pub fn encode_samples(seq: u64, dropped: u64, snapshots_json: &str) -> String {
    let mut s = String::with_capacity(snapshots_json.len() + 64);
    s.push_str("{\"type\":\"samples\",\"seq\":");
    s.push_str(&seq.to_string());
    if dropped > 0 {
        s.push_str(",\"dropped\":");
        s.push_str(&dropped.to_string());
    }
    s.push_str(",\"snapshots\":");
    s.push_str(snapshots_json);
    s.push('}');
    s
}

/// Why a batch is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    Empty,
    TooLarge(usize),
    /// Snapshot `index` is not newer than the one before it.
    OutOfOrder {
        index: usize,
    },
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchError::Empty => write!(f, "a batch needs at least one snapshot"),
            BatchError::TooLarge(n) => write!(
                f,
                "{n} snapshots in one batch; at most {MAX_BATCH_SNAPSHOTS}"
            ),
            BatchError::OutOfOrder { index } => {
                write!(f, "snapshot {index} is not newer than the one before it")
            }
        }
    }
}

impl std::error::Error for BatchError {}

impl Samples {
    /// The checks the hub makes before storing: 1 to [`MAX_BATCH_SNAPSHOTS`] snapshots with
    /// strictly increasing timestamps.
    pub fn check(&self) -> Result<(), BatchError> {
        match self.snapshots.len() {
            0 => return Err(BatchError::Empty),
            n if n > MAX_BATCH_SNAPSHOTS => return Err(BatchError::TooLarge(n)),
            _ => {}
        }
        match self
            .snapshots
            .windows(2)
            .position(|w| w[1].ts_ms <= w[0].ts_ms)
        {
            Some(i) => Err(BatchError::OutOfOrder { index: i + 1 }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_samples_read_back_as_samples() {
        let snaps = vec![
            RawSnapshot {
                ts_ms: 1_000,
                procs: Some(5),
                ..RawSnapshot::default()
            },
            RawSnapshot {
                ts_ms: 2_000,
                ..RawSnapshot::default()
            },
        ];
        let json = serde_json::to_string(&snaps).expect("serialize");
        for dropped in [0, 7] {
            let frame = encode_samples(42, dropped, &json);
            let msg: AgentMessage = serde_json::from_str(&frame).expect("parse");
            let want = AgentMessage::Samples(Samples {
                seq: 42,
                dropped,
                snapshots: snaps.clone(),
            });
            assert_eq!(msg, want);
            assert_eq!(serde_json::to_string(&want).expect("serialize"), frame);
        }
    }

    #[test]
    fn hub_messages_have_the_documented_shape() {
        let w: HubMessage = serde_json::from_str(
            r#"{"type":"welcome","server_id":"s1","interval_secs":10,"last_seq":3,"extra":1}"#,
        )
        .expect("welcome");
        assert_eq!(
            w,
            HubMessage::Welcome {
                server_id: "s1".into(),
                interval_secs: 10,
                last_seq: 3
            }
        );
        assert_eq!(
            serde_json::to_string(&HubMessage::Ack { seq: 9 }).expect("ack"),
            r#"{"type":"ack","seq":9}"#
        );
        assert_eq!(
            serde_json::to_string(&HubMessage::Config { interval_secs: 5 }).expect("config"),
            r#"{"type":"config","interval_secs":5}"#
        );
        let hello = AgentMessage::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            agent_version: "0.1.0".into(),
            hostname: "web-1".into(),
            os: "Debian".into(),
            arch: "x86_64".into(),
            kernel: "6.1".into(),
        });
        let text = serde_json::to_string(&hello).expect("hello");
        assert!(text.starts_with(r#"{"type":"hello","protocol":1,"agent_version":"0.1.0""#));
    }

    #[test]
    fn batch_checks() {
        let at = |ts| RawSnapshot {
            ts_ms: ts,
            ..RawSnapshot::default()
        };
        let batch = |snapshots| Samples {
            seq: 1,
            dropped: 0,
            snapshots,
        };
        assert_eq!(batch(vec![]).check(), Err(BatchError::Empty));
        assert_eq!(batch(vec![at(1), at(2)]).check(), Ok(()));
        assert_eq!(
            batch(vec![at(1), at(3), at(3)]).check(),
            Err(BatchError::OutOfOrder { index: 2 })
        );
        let big = (0..121).map(at).collect();
        assert_eq!(batch(big).check(), Err(BatchError::TooLarge(121)));
        assert_eq!(clamp_interval(0), 1);
        assert_eq!(clamp_interval(600), 60);
    }
}
