//! One connection to the hub: the WebSocket upgrade with the enrollment token, hello and
//! welcome, then the session that sends batches and applies acks and config changes.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use steward_metrics::agent_proto::{AgentMessage, Hello, HubMessage, clamp_interval};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::Shared;
use crate::log::{debug, info, warning};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long the hub may take to acknowledge a batch before the connection counts as dead.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the hub may take to send its welcome.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a shutdown waits for the last batches to be acknowledged.
const FAREWELL: Duration = Duration::from_secs(2);

/// Why a connection attempt failed.
#[derive(Debug)]
pub enum ConnectError {
    /// 401: the token is unknown or revoked.
    Unauthorized,
    Failed(String),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Unauthorized => f.write_str("the hub refused the enrollment token"),
            ConnectError::Failed(why) => f.write_str(why),
        }
    }
}

/// What the welcome said.
pub struct Welcome {
    pub server_id: String,
    pub interval_secs: u32,
    pub last_seq: u64,
}

/// The upgrade, the hello and the welcome.
pub async fn connect(
    url: &str,
    token: &str,
    connector: Connector,
    hello: &Hello,
) -> Result<(Ws, Welcome), ConnectError> {
    let fail = |e: &dyn std::fmt::Display| ConnectError::Failed(e.to_string());
    let mut request = url.into_client_request().map_err(|e| fail(&e))?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| fail(&"the token holds characters a header cannot carry"))?;
    request.headers_mut().insert(header::AUTHORIZATION, bearer);
    request.headers_mut().insert(
        header::USER_AGENT,
        HeaderValue::from_static(concat!("steward-agent/", env!("CARGO_PKG_VERSION"))),
    );
    // The hub sends only small frames; small buffers keep the agent's memory low.
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20));
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        request,
        Some(config),
        true,
        Some(connector),
    )
    .await
    .map_err(|e| match e {
        WsError::Http(r) if r.status() == StatusCode::UNAUTHORIZED => ConnectError::Unauthorized,
        WsError::Http(r) => fail(&format_args!("the hub answered {}", r.status())),
        other => fail(&other),
    })?;
    let hello = serde_json::to_string(&AgentMessage::Hello(hello.clone())).map_err(|e| fail(&e))?;
    ws.send(Message::text(hello)).await.map_err(|e| fail(&e))?;
    let welcome = tokio::time::timeout(WELCOME_TIMEOUT, async {
        while let Some(msg) = ws.next().await {
            match msg.map_err(|e| fail(&e))? {
                Message::Text(t) => {
                    if let Ok(HubMessage::Welcome {
                        server_id,
                        interval_secs,
                        last_seq,
                    }) = serde_json::from_str(&t)
                    {
                        return Ok(Welcome {
                            server_id,
                            interval_secs: clamp_interval(interval_secs),
                            last_seq,
                        });
                    }
                }
                Message::Close(frame) => return Err(fail(&closed(frame.as_ref()))),
                _ => {}
            }
        }
        Err(fail(&"the hub closed the connection before its welcome"))
    })
    .await
    .map_err(|_| fail(&"no welcome from the hub within 10 s"))??;
    Ok((ws, welcome))
}

fn closed(frame: Option<&tokio_tungstenite::tungstenite::protocol::CloseFrame>) -> String {
    match frame {
        Some(f) if !f.reason.is_empty() => {
            format!("the hub closed the connection ({}): {}", f.code, f.reason)
        }
        Some(f) => format!("the hub closed the connection ({})", f.code),
        None => "the hub closed the connection".into(),
    }
}

/// How a session ended.
pub enum End {
    Shutdown,
    Lost(String),
}

/// Sends batches as the window allows and reads acks and config until the connection ends
/// or `stop` turns true.
pub async fn session(ws: &mut Ws, shared: &Shared, stop: &mut watch::Receiver<bool>) -> End {
    let mut last_progress = Instant::now();
    loop {
        if let Err(e) = fill_window(ws, shared, &mut last_progress).await {
            return End::Lost(e.to_string());
        }
        let waiting = shared.buffer().has_inflight();
        tokio::select! {
            () = shared.wake.notified() => {}
            msg = ws.next() => match msg {
                None => return End::Lost("the connection closed".into()),
                Some(Err(e)) => return End::Lost(e.to_string()),
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<HubMessage>(&t) {
                    Ok(HubMessage::Ack { seq }) => {
                        shared.buffer().ack(seq);
                        last_progress = Instant::now();
                    }
                    Ok(HubMessage::Config { interval_secs }) => {
                        let secs = clamp_interval(interval_secs);
                        info!("the hub set the interval to {secs} s");
                        shared.set_interval(secs);
                    }
                    Ok(HubMessage::Welcome { .. }) => debug!("a second welcome, ignored"),
                    // A newer hub's message types are skipped (see the protocol docs).
                    Err(e) => debug!("ignored a message from the hub: {e}"),
                },
                Some(Ok(Message::Close(frame))) => return End::Lost(closed(frame.as_ref())),
                Some(Ok(_)) => {}
            },
            () = tokio::time::sleep_until(last_progress + ACK_TIMEOUT), if waiting => {
                return End::Lost(format!("no ack from the hub for {} s", ACK_TIMEOUT.as_secs()));
            }
            () = crate::stopped(stop) => {
                farewell(ws, shared).await;
                return End::Shutdown;
            }
        }
    }
}

/// Sends batches until the window is full or nothing waits.
async fn fill_window(
    ws: &mut Ws,
    shared: &Shared,
    last_progress: &mut Instant,
) -> Result<(), WsError> {
    loop {
        let (was_idle, frame) = {
            let mut buf = shared.buffer();
            (!buf.has_inflight(), buf.next_frame())
        };
        let Some(frame) = frame else {
            return Ok(());
        };
        if was_idle {
            // The ack clock starts when something is first in flight.
            *last_progress = Instant::now();
        }
        ws.send(Message::text(frame)).await?;
    }
}

/// On shutdown: send what is held and wait briefly for the acks, then close.
async fn farewell(ws: &mut Ws, shared: &Shared) {
    let flushed = tokio::time::timeout(FAREWELL, async {
        let mut last_progress = Instant::now();
        loop {
            fill_window(ws, shared, &mut last_progress).await?;
            if !shared.buffer().has_inflight() {
                return Ok::<(), WsError>(());
            }
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    if let Ok(HubMessage::Ack { seq }) = serde_json::from_str(&t) {
                        shared.buffer().ack(seq);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Err(WsError::ConnectionClosed),
            }
        }
    })
    .await;
    if !matches!(flushed, Ok(Ok(()))) {
        warning!(
            "stopping with {} snapshots the hub has not acknowledged",
            shared.buffer().snapshots()
        );
    }
    let _ = tokio::time::timeout(FAREWELL, ws.close(None)).await;
}
