//! [`Frame`]: one message of the live view, made once per tick and sent to every subscriber
//! it concerns, with a slot for its encoded form (steward-api's permessage-deflate) that the
//! first connection to need it fills and the others share.
use std::sync::OnceLock;

use bytes::Bytes;

/// A text message encoded once, with its encoded (compressed) form made the first time a
/// connection needs it, then shared.
#[derive(Debug)]
pub struct Frame {
    text: Bytes,
    encoded: OnceLock<Option<Bytes>>,
}

impl Frame {
    pub fn new(text: String) -> Self {
        Frame {
            text: Bytes::from(text),
            encoded: OnceLock::new(),
        }
    }

    /// The message's text.
    pub fn as_str(&self) -> &str {
        // Built from a `String`, so always UTF-8.
        std::str::from_utf8(&self.text).unwrap_or_default()
    }

    /// The message's bytes (UTF-8).
    pub fn bytes(&self) -> &Bytes {
        &self.text
    }

    /// Its length in bytes, uncompressed.
    pub fn len(&self) -> usize {
        self.text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The encoded form, made by `encode` the first time it is asked for (every caller must
    /// pass the same encoder); `None` when the encoder failed, and then the message goes out
    /// as text.
    pub fn encoded_with(&self, encode: impl FnOnce(&[u8]) -> Option<Bytes>) -> Option<&Bytes> {
        self.encoded.get_or_init(|| encode(&self.text)).as_ref()
    }
}

impl From<String> for Frame {
    fn from(text: String) -> Self {
        Frame::new(text)
    }
}
