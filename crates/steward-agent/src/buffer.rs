//! The send buffer: snapshots waiting for the hub, kept compact so an hour of them fits in
//! well under a megabyte, and the batch numbering that lets the hub tell a resend from new
//! data (see `steward_metrics::agent_proto`).
//!
//! Snapshots arrive in `open`. A full chunk (a minute of snapshots at a 1 s interval, six
//! minutes at most) is sealed as deflated JSON into `queue`. When the connection has room,
//! `next_frame` takes the oldest queued batch, or seals whatever is open as plain JSON, numbers
//! it and moves it to `inflight` until the hub acknowledges it. Batches older than an hour
//! are dropped (and counted) from the head of the queue.
//!
//! Architecture Invariant: batches leave in the order their snapshots were taken, and a
//! batch leaves the buffer only when the hub acknowledged its `seq` or a welcome's `last_seq`
//! covers it.

use std::collections::VecDeque;

use steward_metrics::RawSnapshot;
use steward_metrics::agent_proto::{MAX_MESSAGE_BYTES, encode_samples};

/// What one hour means for the buffer.
pub const MAX_AGE_MS: i64 = 3_600_000;
/// A hard cap on the buffer's payload bytes, whatever the host (a many-core host's hour).
pub const MAX_BYTES: usize = 4 << 20;
/// Batches sent but not yet acknowledged.
pub const WINDOW: usize = 4;

enum Payload {
    /// A JSON array of snapshots, about to be sent.
    Json(String),
    /// The same, deflated, while it waits.
    Deflated(Vec<u8>),
}

impl Payload {
    fn len(&self) -> usize {
        match self {
            Payload::Json(s) => s.len(),
            Payload::Deflated(b) => b.len(),
        }
    }
}

struct Batch {
    /// 0 until sent; renumbered after each welcome.
    seq: u64,
    count: u64,
    last_ts: i64,
    /// Snapshots dropped just before this batch.
    dropped_before: u64,
    payload: Payload,
}

/// See the module documentation.
pub struct Buffer {
    open: Vec<RawSnapshot>,
    queue: VecDeque<Batch>,
    inflight: VecDeque<Batch>,
    chunk_len: usize,
    bytes: usize,
    next_seq: u64,
    dropped_pending: u64,
    dropped_total: u64,
}

impl Default for Buffer {
    fn default() -> Self {
        Self::new(10)
    }
}

/// Snapshots per sealed chunk: a minute at 1 s, six minutes at most (so dropping the oldest
/// chunk loses little), never more than the protocol's batch size.
pub fn chunk_len(interval_secs: u32) -> usize {
    (360 / interval_secs.max(1)).clamp(1, 60) as usize
}

impl Buffer {
    pub fn new(interval_secs: u32) -> Buffer {
        Buffer {
            open: Vec::new(),
            queue: VecDeque::new(),
            inflight: VecDeque::new(),
            chunk_len: chunk_len(interval_secs),
            bytes: 0,
            next_seq: 1,
            dropped_pending: 0,
            dropped_total: 0,
        }
    }

    pub fn set_interval(&mut self, interval_secs: u32) {
        self.chunk_len = chunk_len(interval_secs);
    }

    /// Adds a snapshot (the newest) and applies the age and size limits.
    pub fn push(&mut self, snapshot: RawSnapshot) {
        let now = snapshot.ts_ms;
        self.open.push(snapshot);
        if self.open.len() >= self.chunk_len {
            self.seal(true);
        }
        self.enforce_limits(now);
    }

    fn seal(&mut self, deflate: bool) {
        let Some(last) = self.open.last() else {
            return;
        };
        let last_ts = last.ts_ms;
        let count = self.open.len() as u64;
        let json = serde_json::to_string(&self.open).unwrap_or_else(|_| "[]".into());
        self.open.clear();
        let payload = if deflate {
            Payload::Deflated(miniz_oxide::deflate::compress_to_vec(json.as_bytes(), 6))
        } else {
            Payload::Json(json)
        };
        self.bytes += payload.len();
        self.queue.push_back(Batch {
            seq: 0,
            count,
            last_ts,
            dropped_before: std::mem::take(&mut self.dropped_pending),
            payload,
        });
    }

    fn enforce_limits(&mut self, now_ms: i64) {
        while let Some(front) = self.queue.front() {
            let too_old = front.last_ts < now_ms - MAX_AGE_MS;
            if !too_old && self.bytes <= MAX_BYTES {
                break;
            }
            let Some(gone) = self.queue.pop_front() else {
                break;
            };
            self.bytes -= gone.payload.len();
            let lost = gone.count + gone.dropped_before;
            self.dropped_total += gone.count;
            match self.queue.front_mut() {
                Some(next) => next.dropped_before += lost,
                None => self.dropped_pending += lost,
            }
        }
    }

    /// The next `samples` frame to send, if the window has room and anything waits.
    pub fn next_frame(&mut self) -> Option<String> {
        if self.inflight.len() >= WINDOW {
            return None;
        }
        if self.queue.is_empty() {
            self.seal(false);
        }
        let mut batch = self.queue.pop_front()?;
        if batch.seq == 0 {
            batch.seq = self.next_seq;
            self.next_seq += 1;
        }
        let json = match &batch.payload {
            Payload::Json(s) => s.clone(),
            Payload::Deflated(b) => {
                let raw = miniz_oxide::inflate::decompress_to_vec_with_limit(b, MAX_MESSAGE_BYTES)
                    .ok()
                    .and_then(|v| String::from_utf8(v).ok());
                match raw {
                    Some(s) => s,
                    None => {
                        // Cannot happen (we deflated it); drop rather than wedge the queue.
                        self.bytes -= batch.payload.len();
                        self.dropped_total += batch.count;
                        self.dropped_pending += batch.count + batch.dropped_before;
                        return self.next_frame();
                    }
                }
            }
        };
        let frame = encode_samples(batch.seq, batch.dropped_before, &json);
        // Keep the compact form while it waits for its ack.
        if let Payload::Json(_) = batch.payload
            && batch.count > 1
        {
            let before = batch.payload.len();
            batch.payload =
                Payload::Deflated(miniz_oxide::deflate::compress_to_vec(json.as_bytes(), 6));
            self.bytes = self.bytes - before + batch.payload.len();
        }
        self.inflight.push_back(batch);
        Some(frame)
    }

    /// The hub stored every batch up to `seq`.
    pub fn ack(&mut self, seq: u64) {
        while self.inflight.front().is_some_and(|b| b.seq <= seq) {
            if let Some(b) = self.inflight.pop_front() {
                self.bytes -= b.payload.len();
            }
        }
    }

    /// The connection is gone: what was in flight waits again, first in line.
    pub fn disconnected(&mut self) {
        while let Some(b) = self.inflight.pop_back() {
            self.queue.push_front(b);
        }
    }

    /// A new connection's welcome: batches the hub already stored (`seq <= last_seq`) go,
    /// the rest are numbered from `last_seq + 1` when sent.
    pub fn welcomed(&mut self, last_seq: u64) {
        self.disconnected();
        while self
            .queue
            .front()
            .is_some_and(|b| b.seq != 0 && b.seq <= last_seq)
        {
            if let Some(b) = self.queue.pop_front() {
                self.bytes -= b.payload.len();
            }
        }
        for b in &mut self.queue {
            b.seq = 0;
        }
        self.next_seq = last_seq + 1;
    }

    pub fn has_inflight(&self) -> bool {
        !self.inflight.is_empty()
    }

    /// Snapshots held (waiting or in flight).
    pub fn snapshots(&self) -> u64 {
        self.open.len() as u64
            + self
                .queue
                .iter()
                .chain(&self.inflight)
                .map(|b| b.count)
                .sum::<u64>()
    }

    /// Payload bytes held, sealed batches only.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Snapshots dropped since start because they were over an hour old.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total
    }
}

#[cfg(test)]
mod tests;
