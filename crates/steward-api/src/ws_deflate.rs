//! A WebSocket connection for broadcast streams whose messages are compressed once and shared
//! by every client: permessage-deflate (RFC 7692) without context takeover.
//!
//! Why not tungstenite's socket (which axum's `WebSocket` wraps): tungstenite has no
//! permessage-deflate, refuses every frame with RSV1 set (and browsers compress their own
//! messages once the extension is agreed), and copies each outgoing message into the
//! connection's write buffer. With no context takeover a message compresses the same way for
//! every client, so the live view deflates an update once per tick and writes the same bytes
//! to a thousand sockets. Frame headers are still parsed and formatted by tungstenite's
//! [`FrameHeader`]; this module assembles messages, inflates and deflates them, and does the
//! handshake (server side for the API, client side for tests and benchmarks).
use std::io::Cursor;

use bytes::{Buf, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

/// What the server answers to an accepted permessage-deflate offer: neither side keeps its
/// compression context between messages, so one compressed message fits every connection and
/// no connection holds a 32 KiB window.
pub const DEFLATE_RESPONSE: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// The tail every sync-flushed deflate block ends with; RFC 7692 leaves it off the wire.
const SYNC_TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

/// Which end of the connection this is: a server reads masked frames and writes unmasked
/// ones, a client the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

/// A message received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Text(String),
    Binary(Bytes),
    Ping(Bytes),
    Pong(Bytes),
    /// The peer closes: its code and reason, if it gave them.
    Close(Option<(u16, String)>),
    /// A compressed message left compressed ([`Socket::recv_encoded`]): inflate it with
    /// [`inflate`] when its content is needed.
    Deflated {
        text: bool,
        data: Bytes,
    },
}

/// Why a connection cannot go on; [`WsError::close_code`] is the code to close it with.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("WebSocket protocol error: {0}")]
    Protocol(&'static str),
    #[error("message larger than {0} bytes")]
    TooLarge(usize),
    #[error("text message is not UTF-8")]
    InvalidUtf8,
    #[error("WebSocket handshake failed: {0}")]
    Handshake(String),
    #[error("the server answered the upgrade with HTTP {0}")]
    Refused(u16),
}

impl WsError {
    /// The close code RFC 6455 gives this error.
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::TooLarge(_) => 1009,
            WsError::InvalidUtf8 => 1007,
            _ => 1002,
        }
    }
}

/// A text message encoded once ([`steward_services::live::Frame`]), with its compressed form
/// made the first time a connection that agreed to permessage-deflate sends it, then shared by
/// all of them.
pub use steward_services::live::Frame as Shared;

/// The compressed form of a shared message.
pub trait Deflated {
    /// The compressed payload (made once); `None` if the compressor failed, and then the
    /// message goes out uncompressed (RFC 7692 allows either, message by message).
    fn deflated(&self) -> Option<&Bytes>;
}

impl Deflated for Shared {
    fn deflated(&self) -> Option<&Bytes> {
        self.encoded_with(deflate)
    }
}

/// One message compressed on its own (a new context, sync flush, the tail left off); `None`
/// if the compressor reports an error.
pub fn deflate(data: &[u8]) -> Option<Bytes> {
    // Level 6: a message is compressed once for every client, so the better ratio is cheap.
    let mut c = Compress::new(Compression::new(6), false);
    let mut out = Vec::with_capacity(data.len() / 3 + 64);
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(1024));
        }
        let consumed = c.total_in() as usize;
        if let Err(e) = c.compress_vec(&data[consumed..], &mut out, FlushCompress::Sync) {
            tracing::warn!(error = %e, "deflating a WebSocket message failed; sent uncompressed");
            return None;
        }
        // Done once all input is in and the flush left room in the buffer.
        if c.total_in() as usize == data.len() && out.len() < out.capacity() {
            break;
        }
    }
    if out.ends_with(&SYNC_TAIL) {
        out.truncate(out.len() - SYNC_TAIL.len());
    }
    Some(Bytes::from(out))
}

/// A compressed message's content, refusing one that inflates to more than `max` bytes.
pub fn inflate(data: &[u8], max: usize) -> Result<Vec<u8>, WsError> {
    inflate_upto(data, max, false)
}

/// At most the first `n` bytes of a compressed message (cheap: stops there).
pub fn inflate_prefix(data: &[u8], n: usize) -> Result<Vec<u8>, WsError> {
    inflate_upto(data, n, true)
}

fn inflate_upto(data: &[u8], max: usize, truncate: bool) -> Result<Vec<u8>, WsError> {
    let mut input = Vec::with_capacity(data.len() + SYNC_TAIL.len());
    input.extend_from_slice(data);
    input.extend_from_slice(&SYNC_TAIL);
    let mut d = Decompress::new(false);
    let limit = max.saturating_add(1);
    let mut out = Vec::with_capacity((data.len() * 4).max(64).min(limit));
    loop {
        if out.len() == out.capacity() {
            if out.len() >= limit {
                break;
            }
            out.reserve((out.len().max(1024)).min(limit - out.len()));
        }
        let (in_before, out_before) = (d.total_in(), d.total_out());
        let status = d
            .decompress_vec(
                &input[in_before as usize..],
                &mut out,
                FlushDecompress::Sync,
            )
            .map_err(|_| WsError::Protocol("invalid compressed data"))?;
        let all_in = d.total_in() as usize == input.len();
        if status == Status::StreamEnd || (all_in && out.len() < out.capacity()) {
            break;
        }
        if d.total_in() == in_before && d.total_out() == out_before && out.len() < out.capacity() {
            return Err(WsError::Protocol("invalid compressed data"));
        }
    }
    if out.len() > max {
        if !truncate {
            return Err(WsError::TooLarge(max));
        }
        out.truncate(max);
    }
    Ok(out)
}

/// A message being received in several frames.
struct Partial {
    text: bool,
    compressed: bool,
    data: BytesMut,
}

/// One WebSocket connection.
pub struct Socket<S> {
    io: S,
    role: Role,
    deflate: bool,
    max_message: usize,
    buf: BytesMut,
    partial: Option<Partial>,
}

/// Read buffer a connection starts with; it grows for a larger frame and is given back once
/// that frame is handled, so an idle connection keeps little.
const READ_CHUNK: usize = 1024;

impl<S: AsyncRead + AsyncWrite + Unpin> Socket<S> {
    /// A connection on `io` after the handshake; `deflate` says whether permessage-deflate was
    /// agreed, `max_message` bounds a received message (after inflating).
    pub fn new(io: S, role: Role, deflate: bool, max_message: usize) -> Self {
        Self::with_read(io, role, deflate, max_message, BytesMut::new())
    }

    /// The same, with bytes already read past the handshake.
    pub fn with_read(io: S, role: Role, deflate: bool, max_message: usize, read: BytesMut) -> Self {
        Socket {
            io,
            role,
            deflate,
            max_message,
            buf: read,
            partial: None,
        }
    }

    /// Whether messages are compressed on this connection.
    pub fn deflate(&self) -> bool {
        self.deflate
    }

    /// The next message, inflated; `None` when the peer has gone. Cancel-safe: a dropped call
    /// loses nothing.
    pub async fn recv(&mut self) -> Option<Result<Incoming, WsError>> {
        self.next(true).await
    }

    /// The next message, compressed ones left as [`Incoming::Deflated`].
    pub async fn recv_encoded(&mut self) -> Option<Result<Incoming, WsError>> {
        self.next(false).await
    }

    async fn next(&mut self, decode: bool) -> Option<Result<Incoming, WsError>> {
        loop {
            match self.parse(decode) {
                Ok(Some(m)) => return Some(Ok(m)),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
            if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
                self.buf.reserve(READ_CHUNK);
            }
            match self.io.read_buf(&mut self.buf).await {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(e.into())),
            }
        }
    }

    /// One message from what was read, if it is all there.
    fn parse(&mut self, decode: bool) -> Result<Option<Incoming>, WsError> {
        loop {
            let mut cursor = Cursor::new(&self.buf[..]);
            let Some((hdr, len)) = FrameHeader::parse(&mut cursor)
                .map_err(|_| WsError::Protocol("invalid frame header"))?
            else {
                return Ok(None);
            };
            let head = cursor.position() as usize;
            let so_far = self.partial.as_ref().map_or(0, |p| p.data.len());
            if len > (self.max_message - so_far.min(self.max_message)) as u64 {
                return Err(WsError::TooLarge(self.max_message));
            }
            let len = len as usize;
            if self.buf.len() < head + len {
                self.buf.reserve(head + len - self.buf.len());
                return Ok(None);
            }
            match (self.role, hdr.mask) {
                (Role::Server, None) => {
                    return Err(WsError::Protocol("client frames must be masked"));
                }
                (Role::Client, Some(_)) => {
                    return Err(WsError::Protocol("server frames must not be masked"));
                }
                _ => {}
            }
            if hdr.rsv2 || hdr.rsv3 {
                return Err(WsError::Protocol("reserved bits set"));
            }
            self.buf.advance(head);
            let mut payload = self.buf.split_to(len);
            if self.buf.is_empty() && self.buf.capacity() > 4 * READ_CHUNK {
                // A large frame grew the buffer: do not keep that while idle.
                self.buf = BytesMut::new();
            }
            if let Some(mask) = hdr.mask {
                apply_mask(&mut payload, mask);
            }
            let message = match hdr.opcode {
                OpCode::Control(c) => {
                    if !hdr.is_final || len > 125 || hdr.rsv1 {
                        return Err(WsError::Protocol("invalid control frame"));
                    }
                    match c {
                        Control::Ping => Incoming::Ping(payload.freeze()),
                        Control::Pong => Incoming::Pong(payload.freeze()),
                        Control::Close => Incoming::Close(close_payload(&payload)?),
                        Control::Reserved(_) => return Err(WsError::Protocol("unknown opcode")),
                    }
                }
                OpCode::Data(Data::Continue) => {
                    if hdr.rsv1 {
                        return Err(WsError::Protocol("RSV1 on a continuation frame"));
                    }
                    let Some(p) = self.partial.as_mut() else {
                        return Err(WsError::Protocol("continuation frame without a message"));
                    };
                    p.data.extend_from_slice(&payload);
                    if !hdr.is_final {
                        continue;
                    }
                    let Some(p) = self.partial.take() else {
                        continue;
                    };
                    self.finish(p.text, p.compressed, p.data, decode)?
                }
                OpCode::Data(d @ (Data::Text | Data::Binary)) => {
                    if self.partial.is_some() {
                        return Err(WsError::Protocol(
                            "a message began before the last one ended",
                        ));
                    }
                    if hdr.rsv1 && !self.deflate {
                        return Err(WsError::Protocol(
                            "compressed frame without permessage-deflate",
                        ));
                    }
                    let text = d == Data::Text;
                    if !hdr.is_final {
                        self.partial = Some(Partial {
                            text,
                            compressed: hdr.rsv1,
                            data: payload,
                        });
                        continue;
                    }
                    self.finish(text, hdr.rsv1, payload, decode)?
                }
                OpCode::Data(Data::Reserved(_)) => {
                    return Err(WsError::Protocol("unknown opcode"));
                }
            };
            return Ok(Some(message));
        }
    }

    fn finish(
        &self,
        text: bool,
        compressed: bool,
        data: BytesMut,
        decode: bool,
    ) -> Result<Incoming, WsError> {
        if compressed && !decode {
            return Ok(Incoming::Deflated {
                text,
                data: data.freeze(),
            });
        }
        let data = if compressed {
            inflate(&data, self.max_message)?
        } else {
            data.to_vec()
        };
        if text {
            String::from_utf8(data)
                .map(Incoming::Text)
                .map_err(|_| WsError::InvalidUtf8)
        } else {
            Ok(Incoming::Binary(Bytes::from(data)))
        }
    }

    /// Sends a shared text message (compressed if agreed, with the one shared compression).
    pub async fn send_shared(&mut self, message: &Shared) -> std::io::Result<()> {
        let (compressed, payload) = match message.deflated().filter(|_| self.deflate) {
            Some(z) => (true, z.clone()),
            None => (false, message.bytes().clone()),
        };
        self.write_frame(OpCode::Data(Data::Text), compressed, payload)
            .await
    }

    /// Sends a text message of this connection alone.
    pub async fn send_text(&mut self, text: &str) -> std::io::Result<()> {
        self.send_shared(&Shared::new(text.to_owned())).await
    }

    /// Answers a ping.
    pub async fn pong(&mut self, payload: Bytes) -> std::io::Result<()> {
        self.write_frame(OpCode::Control(Control::Pong), false, payload)
            .await
    }

    /// Sends a ping.
    pub async fn ping(&mut self, payload: Bytes) -> std::io::Result<()> {
        self.write_frame(OpCode::Control(Control::Ping), false, payload)
            .await
    }

    /// Sends a close frame with `code` and `reason` (cut to fit a control frame); the caller
    /// then drops the connection.
    pub async fn close(&mut self, code: u16, reason: &str) -> std::io::Result<()> {
        let mut cut = reason.len().min(123);
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut payload = Vec::with_capacity(2 + cut);
        payload.extend_from_slice(&code.to_be_bytes());
        payload.extend_from_slice(&reason.as_bytes()[..cut]);
        self.write_frame(OpCode::Control(Control::Close), false, Bytes::from(payload))
            .await?;
        self.io.shutdown().await
    }

    async fn write_frame(
        &mut self,
        opcode: OpCode,
        rsv1: bool,
        payload: Bytes,
    ) -> std::io::Result<()> {
        let mut hdr = FrameHeader {
            is_final: true,
            rsv1,
            rsv2: false,
            rsv3: false,
            opcode,
            mask: None,
        };
        let payload = if self.role == Role::Client {
            let mask: [u8; 4] = rand::random();
            hdr.mask = Some(mask);
            let mut masked = BytesMut::from(&payload[..]);
            apply_mask(&mut masked, mask);
            masked.freeze()
        } else {
            payload
        };
        let mut head = Vec::with_capacity(14);
        hdr.format(payload.len() as u64, &mut head)
            .map_err(std::io::Error::other)?;
        // Header and payload in one vectored write: no copy of the shared payload.
        let mut out = Bytes::from(head).chain(payload);
        self.io.write_all_buf(&mut out).await?;
        self.io.flush().await
    }
}

fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

fn close_payload(p: &[u8]) -> Result<Option<(u16, String)>, WsError> {
    match p {
        [] => Ok(None),
        [_] => Err(WsError::Protocol("close frame with a one-byte payload")),
        [a, b, reason @ ..] => {
            let reason = String::from_utf8(reason.to_vec()).map_err(|_| WsError::InvalidUtf8)?;
            Ok(Some((u16::from_be_bytes([*a, *b]), reason)))
        }
    }
}

mod handshake;
pub use handshake::{Accepted, accept, connect, offers_deflate};

#[cfg(test)]
mod tests;
