//! A host's output on its way to the store and the browser: cut at the cap (counted, never
//! silently), secret parameter values masked across chunk boundaries, and decoded to text
//! without splitting a character.
use super::*;

/// Replaces every occurrence of the secrets in a stream of bytes by `***`, holding back the
/// bytes that could be the start of one until the next chunk shows whether it is.
#[derive(Default)]
pub(super) struct Mask {
    secrets: Arc<[Vec<u8>]>,
    held: Vec<u8>,
}

impl Mask {
    pub(super) fn new(secrets: Arc<[Vec<u8>]>) -> Self {
        Self {
            secrets,
            held: Vec::new(),
        }
    }

    pub(super) fn longest(&self) -> usize {
        self.secrets.iter().map(Vec::len).max().unwrap_or(0)
    }

    pub(super) fn replace_all(&mut self) {
        for secret in self.secrets.iter().filter(|s| !s.is_empty()) {
            let mut out = Vec::with_capacity(self.held.len());
            let mut i = 0;
            while i < self.held.len() {
                if self.held[i..].starts_with(secret) {
                    out.extend_from_slice(b"***");
                    i += secret.len();
                } else {
                    out.push(self.held[i]);
                    i += 1;
                }
            }
            self.held = out;
        }
    }

    /// What may go out now.
    pub(super) fn push(&mut self, data: &[u8]) -> Vec<u8> {
        if self.secrets.is_empty() {
            return data.to_vec();
        }
        self.held.extend_from_slice(data);
        self.replace_all();
        // A secret that starts in what goes out now ends inside `held`, so it was replaced.
        let keep = self.longest().saturating_sub(1).min(self.held.len());
        let rest = self.held.split_off(self.held.len() - keep);
        std::mem::replace(&mut self.held, rest)
    }

    /// Everything left, at the end of the stream.
    pub(super) fn finish(&mut self) -> Vec<u8> {
        self.replace_all();
        std::mem::take(&mut self.held)
    }
}

/// Turns a stream of bytes into text without splitting a character across messages.
#[derive(Default)]
pub(super) struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    pub(super) fn push(&mut self, data: &[u8]) -> String {
        self.pending.extend_from_slice(data);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            // An incomplete character at the end waits for the rest; anything else is
            // replaced now.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.pending.len(),
        };
        let rest = self.pending.split_off(valid);
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending = rest;
        text
    }

    pub(super) fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        text
    }
}

/// One stream's kept output, up to the cap, with secret values masked.
pub(super) struct Capped {
    pub(super) kept: Vec<u8>,
    pub(super) total: i64,
    pub(super) cap: usize,
    pub(super) text: Utf8Stream,
    pub(super) mask: Mask,
}

impl Capped {
    pub(super) fn new(cap: usize, secrets: Arc<[Vec<u8>]>) -> Self {
        Self {
            kept: Vec::new(),
            total: 0,
            cap,
            text: Utf8Stream::default(),
            mask: Mask::new(secrets),
        }
    }

    /// Keeps what fits; returns the text to stream and whether this push hit the cap.
    pub(super) fn push(&mut self, data: &[u8]) -> (String, bool) {
        let data = self.mask.push(data);
        self.keep(&data)
    }

    /// The text still held back, at the end of the stream.
    pub(super) fn finish(&mut self) -> String {
        let rest = self.mask.finish();
        let (mut text, _) = self.keep(&rest);
        text.push_str(&self.text.finish());
        text
    }

    pub(super) fn keep(&mut self, data: &[u8]) -> (String, bool) {
        self.total += data.len() as i64;
        let was_full = self.kept.len() >= self.cap;
        let room = self.cap.saturating_sub(self.kept.len());
        let keep = room.min(data.len());
        self.kept.extend_from_slice(&data[..keep]);
        let text = self.text.push(&data[..keep]);
        (text, !was_full && keep < data.len())
    }

    pub(super) fn truncated(&self) -> bool {
        self.total > self.kept.len() as i64
    }
}
