//! Interactive shells on a pseudo-terminal, for the web terminal: [`Connection::open_pty`]
//! opens a channel with a PTY and a login shell and splits it into a [`PtyReader`] (what the
//! shell prints) and a [`PtyWriter`] (keystrokes, window size, close), so callers never touch
//! the SSH library's channel types.
use std::sync::Arc;

use bytes::Bytes;
use futures_util::FutureExt;
use russh::ChannelMsg;

use crate::client::{Connection, SshError};

/// What the shell side of a PTY did.
#[derive(Debug)]
pub enum PtyEvent {
    /// Output (standard output and error are one stream on a terminal).
    Output(Bytes),
    /// The shell exited or the channel closed.
    Ended,
    /// Something else the channel reported (exit status, window adjustments …).
    Other,
}

/// The reading half of a PTY channel.
pub struct PtyReader {
    read: russh::ChannelReadHalf,
}

/// The writing half of a PTY channel; cheap to share.
#[derive(Clone)]
pub struct PtyWriter {
    write: Arc<russh::ChannelWriteHalf<russh::client::Msg>>,
}

fn event(msg: Option<ChannelMsg>) -> PtyEvent {
    match msg {
        Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
            PtyEvent::Output(Bytes::copy_from_slice(&data))
        }
        Some(ChannelMsg::Eof) | Some(ChannelMsg::Close) | None => PtyEvent::Ended,
        Some(_) => PtyEvent::Other,
    }
}

impl PtyReader {
    /// The next thing the shell did.
    pub async fn next(&mut self) -> PtyEvent {
        event(self.read.wait().await)
    }

    /// The next thing the shell did if it is already here, without waiting.
    pub fn next_now(&mut self) -> Option<PtyEvent> {
        self.read.wait().now_or_never().map(event)
    }
}

impl PtyWriter {
    /// Sends keystrokes.
    pub async fn input(&self, data: Bytes) -> Result<(), SshError> {
        self.write
            .data_bytes(data)
            .await
            .map_err(|e| SshError::Protocol(e.to_string()))
    }

    /// Tells the shell the terminal's new size.
    pub async fn resize(&self, cols: u32, rows: u32) -> Result<(), SshError> {
        self.write
            .window_change(cols, rows, 0, 0)
            .await
            .map_err(|e| SshError::Protocol(e.to_string()))
    }

    /// Closes the channel (the shell gets SIGHUP).
    pub async fn close(&self) {
        let _ = self.write.close().await;
    }
}

impl Connection {
    /// Opens a login shell on a pseudo-terminal of type `term` and size `cols` × `rows`.
    pub async fn open_pty(
        &self,
        term: &str,
        cols: u32,
        rows: u32,
    ) -> Result<(PtyReader, PtyWriter), SshError> {
        let channel = self.open_session().await?;
        let protocol = |e: russh::Error| SshError::Protocol(e.to_string());
        channel
            .request_pty(true, term, cols, rows, 0, 0, &[])
            .await
            .map_err(protocol)?;
        channel.request_shell(true).await.map_err(protocol)?;
        let (read, write) = channel.split();
        Ok((
            PtyReader { read },
            PtyWriter {
                write: Arc::new(write),
            },
        ))
    }
}
