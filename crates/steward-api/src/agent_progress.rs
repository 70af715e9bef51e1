//! The streamed answer of an agent install: when the client asked for
//! `application/x-ndjson`, the steps the install reports on its progress channel
//! (`steward_services::agent_install::Progress`) are streamed one JSON line each
//! ([`AgentInstallProgress`]), ending with the result or the error.
//!
//! The streamed install runs in a task of its own, so a browser that goes away midway does not
//! leave a half-installed agent: the install finishes, is audited, and only the lines are lost.
use std::convert::Infallible;
use std::future::Future;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use steward_proto::{AgentInstallProgress, AgentInstallResult, AgentInstallStep, ErrorBody};
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};
use crate::extract::header_list;

/// The media type of a streamed install.
pub const NDJSON: &str = "application/x-ndjson";

/// Whether the request asks for the streamed answer.
pub fn wants_stream(headers: &HeaderMap) -> bool {
    header_list(headers, header::ACCEPT).any(|t| {
        t.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case(NDJSON))
    })
}

fn line(p: &AgentInstallProgress) -> Bytes {
    let mut v = serde_json::to_vec(p).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

/// The error line for `e`, rendered as the error answer would have been (5xx logged there).
async fn error_line(e: ApiError) -> AgentInstallProgress {
    let resp = e.into_response();
    let status = resp.status().as_u16();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .ok()
        .and_then(|b| serde_json::from_slice::<ErrorBody>(&b).ok());
    match body {
        Some(b) => AgentInstallProgress::Error {
            status,
            error: b.error,
        },
        None => AgentInstallProgress::Error {
            status: StatusCode::INTERNAL_SERVER_ERROR.as_u16(),
            error: steward_proto::ErrorDetail {
                code: "internal".into(),
                message: "internal error".into(),
                details: serde_json::json!({}),
            },
        },
    }
}

/// Runs `work` in a task of its own and answers with its steps (from `steps`) as they come,
/// then its result or error, one JSON line each.
pub fn stream<F>(mut steps: mpsc::UnboundedReceiver<AgentInstallStep>, work: F) -> Response
where
    F: Future<Output = ApiResult<AgentInstallResult>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(16);
    tokio::spawn(async move {
        let work = tokio::spawn(work);
        // Ends when the work is done and its progress sender (in its `Steps`) dropped.
        while let Some(step) = steps.recv().await {
            let _ = tx
                .send(Ok(line(&AgentInstallProgress::Step { step })))
                .await;
        }
        let last = match work.await {
            Ok(Ok(result)) => AgentInstallProgress::Result {
                result: Box::new(result),
            },
            Ok(Err(e)) => error_line(e).await,
            Err(join) => error_line(ApiError::internal(join)).await,
        };
        let _ = tx.send(Ok(line(&last))).await;
    });
    // Fused: a layer may poll once more after the end, which a bare `unfold` answers with a
    // panic.
    let body = Body::from_stream(futures_util::StreamExt::fuse(futures_util::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|item| (item, rx)) },
    )));
    (
        [
            (header::CONTENT_TYPE, NDJSON),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_header_asks_for_the_stream() {
        let mut h = HeaderMap::new();
        assert!(!wants_stream(&h));
        h.insert(header::ACCEPT, "application/json".parse().expect("header"));
        assert!(!wants_stream(&h));
        h.insert(
            header::ACCEPT,
            "application/json;q=0.5, Application/X-NDJSON"
                .parse()
                .expect("header"),
        );
        assert!(wants_stream(&h));
    }
}
