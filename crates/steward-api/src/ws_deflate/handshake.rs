//! The WebSocket handshake: the server's answer to an upgrade request (with the
//! permessage-deflate offer read), and a plain-TCP client for tests and benchmarks.
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{DEFLATE_RESPONSE, Role, Socket, WsError};
use crate::extract::header_list;

/// Whether a client's `Sec-WebSocket-Extensions` offers permessage-deflate in a form this
/// module can serve: an offer whose parameters are the ones RFC 7692 defines, and that does
/// not ask the server for a window smaller than 32 KiB.
pub fn offers_deflate(headers: &HeaderMap) -> bool {
    header_list(headers, header::SEC_WEBSOCKET_EXTENSIONS).any(|offer| {
        let mut parts = offer.split(';').map(str::trim);
        parts.next() == Some("permessage-deflate")
            && parts.all(|param| {
                let (name, value) = match param.split_once('=') {
                    Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
                    None => (param, None),
                };
                match name {
                    "server_no_context_takeover" | "client_no_context_takeover" => value.is_none(),
                    // Any client window is fine: we inflate with the largest one.
                    "client_max_window_bits" => {
                        value.is_none_or(|v| v.parse::<u8>().is_ok_and(|b| (8..=15).contains(&b)))
                    }
                    "server_max_window_bits" => value == Some("15"),
                    _ => false,
                }
            })
    })
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    header_list(headers, name).any(|t| t.eq_ignore_ascii_case(token))
}

/// An accepted upgrade: the `101 Switching Protocols` answer to return, and whether the
/// connection compresses.
pub struct Accepted {
    pub response: Response,
    pub deflate: bool,
}

/// Checks a WebSocket upgrade request (HTTP/1.1, RFC 6455) and builds the answer, agreeing to
/// permessage-deflate when the client offers it. `Err` says what is missing.
pub fn accept(method: &Method, headers: &HeaderMap) -> Result<Accepted, &'static str> {
    if method != Method::GET {
        return Err("a WebSocket upgrade is a GET request");
    }
    if !has_token(headers, header::CONNECTION, "upgrade")
        || !has_token(headers, header::UPGRADE, "websocket")
    {
        return Err("send Connection: upgrade and Upgrade: websocket");
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err("Sec-WebSocket-Version must be 13");
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return Err("Sec-WebSocket-Key is missing");
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let deflate = offers_deflate(headers);
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = response.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).map_err(|_| "invalid Sec-WebSocket-Key")?,
    );
    if deflate {
        h.insert(
            header::SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_static(DEFLATE_RESPONSE),
        );
    }
    Ok(Accepted { response, deflate })
}

/// Opens a client connection to `url` (`ws://host:port/path?query`, plain TCP: tests and
/// benchmarks on loopback), with `headers` added to the upgrade request, offering
/// permessage-deflate when `offer_deflate`. Whether the server agreed is
/// [`Socket::deflate`].
pub async fn connect(
    url: &str,
    headers: &[(&str, &str)],
    offer_deflate: bool,
    max_message: usize,
) -> Result<Socket<tokio::net::TcpStream>, WsError> {
    use base64::Engine;
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| WsError::Handshake("only ws:// URLs".into()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = tokio::net::TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>());
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if offer_deflate {
        req.push_str("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n");
    }
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await?;
    let mut buf = BytesMut::with_capacity(4096);
    let (status, accept, extensions, head) = loop {
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(WsError::Handshake(
                "connection closed during the handshake".into(),
            ));
        }
        let mut names = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut names);
        match resp.parse(&buf) {
            Ok(httparse::Status::Complete(n)) => {
                let find = |want: &str| {
                    resp.headers
                        .iter()
                        .filter(|h| h.name.eq_ignore_ascii_case(want))
                        .map(|h| String::from_utf8_lossy(h.value).into_owned())
                        .collect::<Vec<_>>()
                };
                break (
                    resp.code.unwrap_or(0),
                    find("sec-websocket-accept"),
                    find("sec-websocket-extensions"),
                    n,
                );
            }
            Ok(httparse::Status::Partial) if buf.len() < 64 * 1024 => {}
            _ => return Err(WsError::Handshake("invalid HTTP response".into())),
        }
    };
    if status != 101 {
        return Err(WsError::Refused(status));
    }
    if accept.first().map(String::as_str)
        != Some(tungstenite::handshake::derive_accept_key(key.as_bytes()).as_str())
    {
        return Err(WsError::Handshake("wrong Sec-WebSocket-Accept".into()));
    }
    let deflate = extensions
        .iter()
        .any(|e| e.split(';').next().map(str::trim) == Some("permessage-deflate"));
    if deflate && !offer_deflate {
        return Err(WsError::Handshake(
            "an extension that was not offered".into(),
        ));
    }
    buf.advance(head);
    Ok(Socket::with_read(
        stream,
        Role::Client,
        deflate,
        max_message,
        buf,
    ))
}
