//! A small fake hub implementing the agent protocol (steward_metrics::agent_proto) on
//! 127.0.0.1. Also built into `examples/fake_hub.rs`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use steward_metrics::agent_proto::{AgentMessage, Hello, HubMessage, Samples};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

/// What the fake hub saw and stored.
#[derive(Default)]
pub struct HubState {
    pub token: String,
    pub interval_secs: u32,
    /// Highest stored seq.
    pub last_seq: u64,
    /// Stored batches, in the order stored.
    pub stored: Vec<Samples>,
    /// Every samples frame received (seq, first ts), stored or not.
    pub received: Vec<(u64, i64)>,
    pub hellos: Vec<Hello>,
    pub unauthorized: u32,
    pub welcomed: u32,
    /// Store the next batch, then drop the connection without acknowledging it.
    pub drop_next_ack: bool,
    /// Sent as a config message right after the next welcome.
    pub config_after_welcome: Option<u32>,
    /// Protocol violations seen (a test asserts there are none).
    pub violations: Vec<String>,
}

impl HubState {
    /// Stored snapshot timestamps, in order.
    pub fn stored_ts(&self) -> Vec<i64> {
        self.stored
            .iter()
            .flat_map(|b| b.snapshots.iter().map(|s| s.ts_ms))
            .collect()
    }
}

/// TLS material for the hub: the server's chain and key, PEM.
#[derive(Clone)]
pub struct HubTls {
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
}

pub struct FakeHub {
    pub addr: SocketAddr,
    state: Arc<Mutex<HubState>>,
    tls: Option<HubTls>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl FakeHub {
    pub async fn start(token: &str, interval_secs: u32) -> FakeHub {
        Self::start_with(token, interval_secs, None).await
    }

    pub async fn start_with(token: &str, interval_secs: u32, tls: Option<HubTls>) -> FakeHub {
        Self::listen("127.0.0.1:0", token, interval_secs, tls).await
    }

    /// A plain hub on a chosen address.
    pub async fn start_at(addr: &str, token: &str, interval_secs: u32) -> FakeHub {
        Self::listen(addr, token, interval_secs, None).await
    }

    async fn listen(addr: &str, token: &str, interval_secs: u32, tls: Option<HubTls>) -> FakeHub {
        let listener = TcpListener::bind(addr).await.expect("bind");
        let state = Arc::new(Mutex::new(HubState {
            token: token.to_owned(),
            interval_secs,
            ..HubState::default()
        }));
        let mut hub = FakeHub {
            addr: listener.local_addr().expect("addr"),
            state,
            tls,
            task: None,
        };
        hub.serve(listener);
        hub
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    pub fn state(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().expect("hub state")
    }

    /// The hub goes away: the listener closes and every connection drops.
    pub fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    /// The hub comes back on the same address, with what it had stored.
    pub async fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            socket.set_reuseaddr(true).expect("reuseaddr");
            match socket.bind(self.addr).and_then(|()| socket.listen(64)) {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("rebinding {}: {e}", self.addr);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot rebind {}: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    fn serve(&mut self, listener: TcpListener) {
        let state = Arc::clone(&self.state);
        let acceptor = self.tls.clone().map(tls_acceptor);
        self.task = Some(tokio::spawn(async move {
            // Owned here, so aborting this task drops every connection with it.
            let mut connections = JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&state);
                match &acceptor {
                    None => connections.spawn(connection(tcp, state)),
                    Some(acceptor) => {
                        let acceptor = acceptor.clone();
                        connections.spawn(async move {
                            if let Ok(tls) = acceptor.accept(tcp).await {
                                connection(tls, state).await;
                            }
                        })
                    }
                };
            }
        }));
    }

    /// Waits until `cond` holds on the state, or panics after `secs`.
    pub async fn wait_for(&self, secs: u64, what: &str, cond: impl Fn(&HubState) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !cond(&self.state()) {
            assert!(
                Instant::now() < deadline,
                "timed out after {secs} s waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.stop();
    }
}

fn tls_acceptor(tls: HubTls) -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert_pem)
        .expect("cert file")
        .collect::<Result<_, _>>()
        .expect("certs");
    let key = PrivateKeyDer::from_pem_file(&tls.key_pem).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server config");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// One agent connection: 401 for a wrong token, else hello, welcome, then store and ack.
#[expect(
    clippy::result_large_err,
    reason = "tungstenite's handshake callback type is fixed"
)]
async fn connection<S>(stream: S, state: Arc<Mutex<HubState>>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let check = {
        let state = Arc::clone(&state);
        move |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
            let mut st = state.lock().expect("state");
            let want = format!("Bearer {}", st.token);
            let ok = req.uri().path() == "/api/v1/agent/connect"
                && req
                    .headers()
                    .get("authorization")
                    .is_some_and(|v| v.as_bytes() == want.as_bytes());
            if ok {
                Ok(resp)
            } else {
                st.unauthorized += 1;
                let mut r = ErrorResponse::new(Some("unauthorized".into()));
                *r.status_mut() = StatusCode::UNAUTHORIZED;
                Err(r)
            }
        }
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, check).await else {
        return;
    };
    // The hello comes first.
    let Some(Ok(Message::Text(t))) = ws.next().await else {
        return;
    };
    let Ok(AgentMessage::Hello(hello)) = serde_json::from_str::<AgentMessage>(&t) else {
        let v = format!("the first frame is not a hello: {t}");
        state.lock().expect("state").violations.push(v);
        return;
    };
    let (welcome, config) = {
        let mut st = state.lock().expect("state");
        st.hellos.push(hello);
        st.welcomed += 1;
        let w = HubMessage::Welcome {
            server_id: "srv-1".into(),
            interval_secs: st.interval_secs,
            last_seq: st.last_seq,
        };
        (w, st.config_after_welcome.take())
    };
    let send = |m: &HubMessage| Message::text(serde_json::to_string(m).expect("json"));
    if ws.send(send(&welcome)).await.is_err() {
        return;
    }
    if let Some(interval_secs) = config {
        state.lock().expect("state").interval_secs = interval_secs;
        if ws
            .send(send(&HubMessage::Config { interval_secs }))
            .await
            .is_err()
        {
            return;
        }
    }
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Text(t) = msg else { continue };
        let mut st = state.lock().expect("state");
        let Ok(AgentMessage::Samples(batch)) = serde_json::from_str::<AgentMessage>(&t) else {
            st.violations.push(format!("not a samples frame: {t}"));
            return;
        };
        if let Err(e) = batch.check() {
            st.violations.push(format!("batch {}: {e}", batch.seq));
            return;
        }
        drop(st);
        let (seq, drop_conn) = {
            let mut st = state.lock().expect("state");
            st.received
                .push((batch.seq, batch.snapshots.first().map_or(0, |s| s.ts_ms)));
            let seq = batch.seq;
            if seq > st.last_seq {
                if let Some(prev) = st.stored.last().and_then(|b| b.snapshots.last())
                    && batch.snapshots[0].ts_ms <= prev.ts_ms
                {
                    let v = format!("batch {seq} does not start after what is stored");
                    st.violations.push(v);
                }
                st.last_seq = seq;
                st.stored.push(batch);
            }
            (seq, std::mem::take(&mut st.drop_next_ack))
        };
        if drop_conn {
            return;
        }
        if ws.send(send(&HubMessage::Ack { seq })).await.is_err() {
            return;
        }
    }
}
