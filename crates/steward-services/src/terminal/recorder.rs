//! The recording of one terminal session: asciicast v2 (output and resizes, never input: it
//! may hold passwords), zstd-compressed in chunks.
//!
//! The session loop only hands the bytes it already sends to the browser to an encoder task
//! of its own, so escaping, compressing and storing run beside the terminal instead of in
//! its path. The encoder writes a chunk every [`FLUSH_EVERY`] (each session at its own phase,
//! so a hundred sessions opened together do not all compress at once) or every
//! [`FLUSH_BYTES`] of text; a writer task stores the chunks in order, so a slow database
//! delays neither.
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;
use serde_json::json;
use steward_db::terminal_sessions;
use tokio::sync::mpsc;

use super::TERM;
use crate::Services;

/// How often the recording is written.
const FLUSH_EVERY: Duration = Duration::from_secs(2);
/// Recorded text held before an early write.
const FLUSH_BYTES: usize = 256 * 1024;
/// Output messages the encoder may lag behind before the terminal waits for it: the
/// recording is complete, never sampled.
const QUEUE: usize = 256;
/// zstd level: level 3 costs several times level 1 for a few per cent on terminal text.
const LEVEL: i32 = 1;

enum Rec {
    Output(f64, Bytes),
    Resize(f64, u32, u32),
    Marker(f64, String),
}

/// Takes the longest valid UTF-8 text from the front of `pending`, leaving an incomplete
/// trailing sequence for the next chunk (invalid bytes become U+FFFD).
pub(super) fn take_utf8(pending: &mut Vec<u8>) -> String {
    let mut out = String::new();
    let mut start = 0;
    loop {
        match std::str::from_utf8(&pending[start..]) {
            Ok(s) => {
                out.push_str(s);
                start = pending.len();
                break;
            }
            Err(e) => {
                let valid = start + e.valid_up_to();
                out.push_str(&String::from_utf8_lossy(&pending[start..valid]));
                match e.error_len() {
                    Some(n) => {
                        out.push('\u{FFFD}');
                        start = valid + n;
                    }
                    None => {
                        start = valid;
                        break;
                    }
                }
            }
        }
    }
    pending.drain(..start);
    out
}

/// Turns events into asciicast lines and compressed chunks.
struct Encoder {
    text: String,
    pending: Vec<u8>,
    seq: i64,
    bytes: i64,
    last_at: f64,
    zstd: Option<zstd::bulk::Compressor<'static>>,
    chunks: mpsc::UnboundedSender<(i64, Vec<u8>, i64)>,
}

impl Encoder {
    fn line(&mut self, at: f64, kind: &str, data: &str) {
        use std::fmt::Write;
        // serde_json escapes the text exactly as asciicast players read it.
        let data = serde_json::to_string(data).unwrap_or_else(|_| "\"\"".into());
        let _ = writeln!(self.text, "[{at:.6},\"{kind}\",{data}]");
    }

    fn apply(&mut self, rec: Rec) {
        match rec {
            Rec::Output(at, data) => {
                self.last_at = at;
                self.bytes += data.len() as i64;
                self.pending.extend_from_slice(&data);
                let text = take_utf8(&mut self.pending);
                if !text.is_empty() {
                    self.line(at, "o", &text);
                }
            }
            Rec::Resize(at, cols, rows) => self.line(at, "r", &format!("{cols}x{rows}")),
            Rec::Marker(at, label) => self.line(at, "m", &label),
        }
    }

    fn flush(&mut self) {
        if self.text.is_empty() {
            return;
        }
        let text = std::mem::take(&mut self.text);
        let compressed = match self.zstd.as_mut() {
            Some(z) => z.compress(text.as_bytes()),
            None => zstd::bulk::compress(text.as_bytes(), LEVEL),
        };
        match compressed {
            Ok(c) => {
                let _ = self.chunks.send((self.seq, c, self.bytes));
                self.seq += 1;
            }
            Err(e) => tracing::warn!(error = %e, "terminal recording: compression failed"),
        }
    }
}

/// Records one session; [`Recorder::finish`] waits until everything is stored.
pub struct Recorder {
    started: Instant,
    /// Output bytes recorded.
    pub bytes: i64,
    /// Output bytes the recording may hold; past it, it stops.
    cap: i64,
    /// The recording stopped at the cap.
    pub capped: bool,
    events: Option<mpsc::Sender<Rec>>,
    encoder: tokio::task::JoinHandle<()>,
}

impl Recorder {
    /// Starts a recording with its header line.
    pub fn new(
        st: &Services,
        session_id: &str,
        cols: u32,
        rows: u32,
        started_ms: i64,
        title: &str,
    ) -> Self {
        let header = json!({
            "version": 2,
            "width": cols,
            "height": rows,
            "timestamp": started_ms / 1000,
            "title": title,
            "env": { "TERM": TERM, "SHELL": "/bin/sh" },
        });
        let (chunks, mut stored) = mpsc::unbounded_channel::<(i64, Vec<u8>, i64)>();
        let cap = i64::try_from(st.config.terminal_recording_cap).unwrap_or(i64::MAX);
        let (st, id) = (st.clone(), session_id.to_string());
        let writer = tokio::spawn(async move {
            while let Some((seq, data, bytes)) = stored.recv().await {
                if let Err(e) =
                    terminal_sessions::add_chunk(&st.db.pool, &id, seq, &data, bytes).await
                {
                    tracing::warn!(error = %e, session = %id, "terminal recording: write failed");
                }
            }
        });
        let mut enc = Encoder {
            text: format!("{header}\n"),
            pending: Vec::new(),
            seq: 0,
            bytes: 0,
            last_at: 0.0,
            zstd: zstd::bulk::Compressor::new(LEVEL).ok(),
            chunks,
        };
        let (events, mut rx) = mpsc::channel::<Rec>(QUEUE);
        let phase = FLUSH_EVERY.mul_f64(rand::thread_rng().gen_range(0.5..1.5));
        let encoder = tokio::spawn(async move {
            let mut tick =
                tokio::time::interval_at(tokio::time::Instant::now() + phase, FLUSH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    rec = rx.recv() => match rec {
                        Some(rec) => {
                            enc.apply(rec);
                            // Whatever else is already queued, before looking at the clock.
                            while let Ok(rec) = rx.try_recv() {
                                enc.apply(rec);
                            }
                            if enc.text.len() >= FLUSH_BYTES {
                                enc.flush();
                            }
                        }
                        None => break,
                    },
                    _ = tick.tick() => enc.flush(),
                }
            }
            // A character cut off by the end of the session.
            if !enc.pending.is_empty() {
                let rest = String::from_utf8_lossy(&std::mem::take(&mut enc.pending)).into_owned();
                let at = enc.last_at;
                enc.line(at, "o", &rest);
            }
            enc.flush();
            drop(enc);
            let _ = writer.await;
        });
        Self {
            started: Instant::now(),
            bytes: 0,
            cap,
            capped: false,
            events: Some(events),
            encoder,
        }
    }

    fn at(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    async fn send(&mut self, rec: Rec) {
        if let Some(events) = &self.events
            && events.send(rec).await.is_err()
        {
            tracing::warn!("terminal recording: the encoder stopped");
            self.events = None;
        }
    }

    /// Records output (the same bytes the browser gets). True when this output reached the
    /// size cap: the recording then ends with a marker and records nothing more.
    pub async fn output(&mut self, data: Bytes) -> bool {
        if self.capped {
            return false;
        }
        let at = self.at();
        if self.bytes + data.len() as i64 > self.cap {
            self.capped = true;
            self.send(Rec::Marker(
                at,
                format!(
                    "recording stopped: it reached its limit of {} bytes",
                    self.cap
                ),
            ))
            .await;
            return true;
        }
        self.bytes += data.len() as i64;
        self.send(Rec::Output(at, data)).await;
        false
    }

    /// Records a resize.
    pub async fn resize(&mut self, cols: u32, rows: u32) {
        let at = self.at();
        self.send(Rec::Resize(at, cols, rows)).await;
    }

    /// Writes what is left and waits until every chunk is stored.
    pub async fn finish(&mut self) {
        self.events = None;
        let _ = (&mut self.encoder).await;
    }
}

/// Decompresses a recording's chunks into the asciicast text.
pub fn decompress(chunks: &[Vec<u8>]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    for c in chunks {
        out.extend_from_slice(&zstd::stream::decode_all(c.as_slice())?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_split_across_chunks_is_kept_whole() {
        let text = "ünï".as_bytes();
        // "ü" (two bytes), "n", and the first byte of "ï".
        let mut p = text[..4].to_vec();
        assert_eq!(take_utf8(&mut p), "ün");
        assert_eq!(p, vec![text[3]]);
        p.extend_from_slice(&text[4..]);
        assert_eq!(take_utf8(&mut p), "ï");
        assert!(p.is_empty());
        let mut bad = vec![b'a', 0xff, b'b'];
        assert_eq!(take_utf8(&mut bad), "a\u{FFFD}b");
    }

    #[test]
    fn chunks_decompress_to_the_recording() {
        let a = zstd::bulk::compress(b"{\"version\":2}\n", 3).expect("zstd");
        let b = zstd::bulk::compress(b"[0.1,\"o\",\"hi\"]\n", 3).expect("zstd");
        assert_eq!(
            decompress(&[a, b]).expect("decompress"),
            b"{\"version\":2}\n[0.1,\"o\",\"hi\"]\n"
        );
    }
}
