//! Reading host metrics: a server's series over a time range (charts), the fleet summary
//! (served from the live view in memory), the metric store's disk use, and the live WebSocket.
use std::collections::HashSet;
use std::time::Duration;

use axum::Json;
use axum::extract::Request;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::DateTime;
use steward_core::{Permission, ValidationError};
use steward_metrics::catalog::{self, Unit};
use steward_proto::ErrorBody;
use steward_proto::metrics::{
    LiveClientMessage, LiveServerMessage, MetricPoint, MetricSeries, MetricUnit, MetricsDiskUsage,
    MetricsQuery, MetricsRange, MetricsSummary, MetricsSummaryQuery, ServerDiskUsage,
};
use steward_tsdb::rollup::Tier;

use super::servers::visible;
use super::{tags, time};
use crate::auth::{Principal, revalidate};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, IdPath};
use crate::state::AppState;
use crate::ws_deflate::{self, Incoming};
use steward_services::live::{Scope, Subscription};

/// Most servers one live subscription may name.
pub const MAX_LIVE_SERVERS: usize = 100;
/// The widest range a query may cover (the hour tier's retention and a bit).
const MAX_SPAN_MS: i64 = 3 * 365 * 86_400_000;
/// Disk-use figures are recomputed at most this often.
const DISK_USAGE_TTL_MS: i64 = 60_000;

fn unit(u: Unit) -> MetricUnit {
    match u {
        Unit::Percent => MetricUnit::Percent,
        Unit::Bytes => MetricUnit::Bytes,
        Unit::BytesPerS => MetricUnit::BytesPerS,
        Unit::PerS => MetricUnit::PerS,
        Unit::Seconds => MetricUnit::Seconds,
        Unit::Count => MetricUnit::Count,
        Unit::Load => MetricUnit::Load,
    }
}

/// The catalog names a `names` parameter stands for: exact names, or `group.*`.
pub fn parse_names(raw: Option<&str>) -> Result<Vec<&'static str>, ValidationError> {
    let raw = raw.unwrap_or("").trim();
    if raw.is_empty() {
        return Err(ValidationError::new(
            "names",
            "must name at least one metric",
        ));
    }
    let mut out: Vec<&'static str> = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let matched: Vec<&'static str> = match part.strip_suffix('*') {
            Some(prefix) if prefix.ends_with('.') => catalog::catalog()
                .iter()
                .filter(|i| i.name.starts_with(prefix))
                .map(|i| i.name)
                .collect(),
            _ => catalog::info(part).map(|i| i.name).into_iter().collect(),
        };
        if matched.is_empty() {
            let shown: String = part.chars().take(64).collect();
            return Err(ValidationError::new(
                "names",
                format!("has an unknown metric `{shown}`"),
            ));
        }
        for name in matched {
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    if out.is_empty() {
        return Err(ValidationError::new(
            "names",
            "must name at least one metric",
        ));
    }
    Ok(out)
}

/// An RFC 3339 time or Unix milliseconds.
fn parse_when(field: &str, v: Option<&str>) -> ApiResult<Option<i64>> {
    let Some(s) = v.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(Some(ms));
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| Some(t.timestamp_millis()))
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_query",
                format!("{field} must be an RFC 3339 time or Unix milliseconds"),
            )
        })
}

fn tier_name(t: Tier) -> &'static str {
    match t {
        Tier::Raw => "raw",
        Tier::Minute => "minute",
        Tier::Hour => "hour",
    }
}

/// A server's metrics over a time range: every series (label) of each named metric, at most
/// 1,000 points each, from the finest tier that still holds the range.
#[utoipa::path(get, operation_id = "server_metrics", path = "/api/v1/servers/{id}/metrics", tag = tags::METRICS,
    params(("id" = String, Path), MetricsQuery),
    responses((status = 200, body = MetricsRange), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody, description = "an unknown metric name")))]
pub async fn range(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
    uri: axum::http::Uri,
) -> ApiResult<Json<MetricsRange>> {
    let server = visible(&st, &p, &id).await?;
    let q: MetricsQuery = ApiQuery::from_uri(&uri)?;
    let names = parse_names(q.names.as_deref())?;
    let now = st.now_ms();
    let to = parse_when("to", q.to.as_deref())?.unwrap_or(now);
    let from = parse_when("from", q.from.as_deref())?.unwrap_or(to - 3_600_000);
    if from >= to {
        return Err(ApiError::bad_request(
            "invalid_query",
            "from must be before to",
        ));
    }
    if to - from > MAX_SPAN_MS {
        return Err(ApiError::bad_request(
            "invalid_query",
            "the range may cover at most three years",
        ));
    }
    let step = q.step.unwrap_or(0);
    if !(0..=86_400 * 31).contains(&step) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "step must be 0 to 2678400 seconds",
        ));
    }
    let r = st
        .metrics
        .range(&server.id, &names, from, to, step * 1000)
        .await
        .map_err(ApiError::internal)?;
    let series = r
        .series
        .into_iter()
        .map(|s| MetricSeries {
            unit: catalog::info(&s.name).map_or(MetricUnit::Count, |i| unit(i.unit)),
            points: s
                .points
                .into_iter()
                .map(|p| MetricPoint {
                    t: p.ts,
                    min: p.min,
                    avg: p.avg,
                    max: p.max,
                })
                .collect(),
            name: s.name,
            label: s.label,
        })
        .collect();
    Ok(Json(MetricsRange {
        from: time(from),
        to: time(to),
        step_secs: r.step_ms as f64 / 1000.0,
        tier: tier_name(r.tier).into(),
        series,
    }))
}

/// Who the caller is for the live view.
fn scope_of(p: &Principal) -> Scope {
    Scope {
        org_id: p.user.org_id.clone(),
        visible_tags: p.visible_tags(),
    }
}

/// Every server the caller may see with its status and latest main values (and, when asked,
/// its CPU sparkline), from memory (no query per server).
#[utoipa::path(get, operation_id = "metrics_summary", path = "/api/v1/metrics/summary", tag = tags::METRICS,
    params(MetricsSummaryQuery),
    responses((status = 200, body = MetricsSummary), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn summary(
    State(st): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<MetricsSummaryQuery>,
) -> ApiResult<Response> {
    p.require(Permission::ServersRead)?;
    if st.live.must_load() {
        st.live.refresh(&st).await?;
    }
    let now = st.now_ms();
    let scope = scope_of(&p);
    if q.sparklines.unwrap_or(false) {
        return Ok(Json(MetricsSummary {
            at: time(now),
            items: st.live.summary(&scope, now, true),
        })
        .into_response());
    }
    // Each server's part is kept encoded by the live view until it changes.
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        st.live.summary_json(&scope, now),
    )
        .into_response())
}

/// How much room the stored metrics take per server, what they add per day and what they will
/// take once retention is full (recomputed at most once a minute).
#[utoipa::path(get, operation_id = "metrics_disk_usage", path = "/api/v1/metrics/disk-usage", tag = tags::METRICS,
    responses((status = 200, body = MetricsDiskUsage), (status = 403, body = ErrorBody)))]
pub async fn disk_usage(
    State(st): State<AppState>,
    p: Principal,
) -> ApiResult<Json<MetricsDiskUsage>> {
    p.require(Permission::ServersRead)?;
    let now = st.now_ms();
    let (at, usage) = st
        .live
        .disk_usage(now, DISK_USAGE_TTL_MS, || st.metrics.disk_usage())
        .await
        .map_err(ApiError::internal)?;
    if st.live.must_load() {
        st.live.refresh(&st).await?;
    }
    let visible: std::collections::HashMap<String, String> = st
        .live
        .summary(&scope_of(&p), now, false)
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect();
    let mut items: Vec<ServerDiskUsage> = usage
        .iter()
        .filter_map(|u| {
            Some(ServerDiskUsage {
                server_name: visible.get(&u.server_id)?.clone(),
                server_id: u.server_id.clone(),
                bytes: u.tiers.iter().map(|t| t.bytes).sum(),
                bytes_per_day: u.bytes_per_day,
                projected_bytes: u.tiers.iter().map(|t| t.projected_bytes).sum(),
            })
        })
        .collect();
    items.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then_with(|| a.server_name.cmp(&b.server_name))
    });
    Ok(Json(MetricsDiskUsage {
        at: time(at),
        bytes: items.iter().map(|i| i.bytes).sum(),
        bytes_per_day: items.iter().map(|i| i.bytes_per_day).sum(),
        projected_bytes: items.iter().map(|i| i.projected_bytes).sum(),
        items,
    }))
}

/// Largest message a live client may send (subscriptions are small).
const LIVE_MAX_MESSAGE: usize = 64 * 1024;

/// The live socket's connection: its own WebSocket codec, so that frames are compressed once
/// for every client ([`crate::ws_deflate`]).
type LiveSocket = ws_deflate::Socket<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>;

/// Live metrics over a WebSocket. Send `{"type":"subscribe","fleet":true}` or
/// `{"type":"subscribe","servers":[ids]}`; receive a `snapshot`, then `update` messages (at
/// most four a second, newest values only) for the servers the caller may see. A client that
/// does not keep up is disconnected (close code 1008, reason `too slow`). Clients that offer
/// permessage-deflate (browsers do) get every message compressed.
#[utoipa::path(get, operation_id = "metrics_live", path = "/api/v1/live", tag = tags::METRICS,
    responses((status = 101, description = "switching to the WebSocket protocol; messages are `LiveServerMessage`, requests `LiveClientMessage`"), (status = 400, body = ErrorBody, description = "`websocket_required`"), (status = 403, body = ErrorBody)))]
pub async fn live(
    State(st): State<AppState>,
    p: Principal,
    mut req: Request,
) -> ApiResult<Response> {
    p.require(Permission::ServersRead)?;
    crate::security::require_same_origin(&st, req.headers())?;
    let refuse = |why: &str| {
        ApiError::bad_request(
            "websocket_required",
            format!("this endpoint speaks WebSocket; send an upgrade request ({why})"),
        )
    };
    let accepted = ws_deflate::accept(req.method(), req.headers()).map_err(refuse)?;
    let slot = st
        .sockets
        .acquire(&p.user.id, st.config.max_sockets_per_user)?;
    let upgrade = req
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or_else(|| refuse("the connection cannot be upgraded"))?;
    if st.live.must_load() {
        st.live.refresh(&st).await?;
    }
    let deflate = accepted.deflate;
    tokio::spawn(async move {
        match upgrade.await {
            Ok(io) => {
                let socket = ws_deflate::Socket::new(
                    hyper_util::rt::TokioIo::new(io),
                    ws_deflate::Role::Server,
                    deflate,
                    LIVE_MAX_MESSAGE,
                );
                follow(st, p, socket).await;
                drop(slot);
            }
            Err(e) => tracing::debug!(error = %e, "live socket upgrade failed"),
        }
    });
    Ok(accepted.response)
}

async fn send_json(socket: &mut LiveSocket, msg: &LiveServerMessage) -> bool {
    match serde_json::to_string(msg) {
        Ok(text) => socket.send_text(&text).await.is_ok(),
        Err(_) => false,
    }
}

async fn close(socket: &mut LiveSocket, code: u16, reason: &str) {
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(code, reason)).await;
}

async fn follow(st: AppState, p: Principal, mut socket: LiveSocket) {
    let mut client = st.live.connect(scope_of(&p));
    let mut recheck = tokio::time::interval(st.config.live_recheck);
    recheck.tick().await;
    loop {
        tokio::select! {
            batch = client.rx.recv() => {
                // Encoded (and compressed) once per tick and scope: shared, not copied.
                let Some(batch) = batch else { return };
                for part in batch.iter() {
                    tokio::select! {
                        sent = socket.send_shared(part) => if sent.is_err() { return },
                        // Stuck sending to a client that does not read: just go.
                        () = client.kicked.cancelled() => return,
                    }
                }
            }
            () = client.kicked.cancelled() => {
                close(&mut socket, 1008, "too slow").await;
                return;
            }
            incoming = socket.recv() => match incoming {
                None => return,
                Some(Err(e)) => {
                    close(&mut socket, e.close_code(), &e.to_string()).await;
                    return;
                }
                Some(Ok(Incoming::Close(_))) => {
                    close(&mut socket, 1000, "").await;
                    return;
                }
                Some(Ok(Incoming::Ping(payload))) => {
                    if socket.pong(payload).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Incoming::Text(text))) => {
                    match subscription(&text) {
                        Ok(sub) => st.live.subscribe(client.id, sub),
                        Err(message) => {
                            let msg = LiveServerMessage::Error { code: "invalid_message".into(), message };
                            if !send_json(&mut socket, &msg).await {
                                return;
                            }
                        }
                    }
                }
                Some(Ok(_)) => {}
            },
            _ = recheck.tick() => match still_allowed(&st, &p).await {
                Some(scope) => st.live.set_scope(client.id, scope),
                None => {
                    close(&mut socket, 1008, "session ended").await;
                    return;
                }
            },
        }
    }
}

fn subscription(text: &str) -> Result<Subscription, String> {
    let msg: LiveClientMessage = serde_json::from_str(text)
        .map_err(|e| format!("expected {{\"type\":\"subscribe\",…}}: {e}"))?;
    match msg {
        LiveClientMessage::Subscribe { fleet: true, .. } => Ok(Subscription::Fleet),
        LiveClientMessage::Subscribe { servers, .. } => {
            if servers.len() > MAX_LIVE_SERVERS {
                return Err(format!("at most {MAX_LIVE_SERVERS} servers"));
            }
            Ok(Subscription::Servers(
                servers.into_iter().collect::<HashSet<_>>(),
            ))
        }
    }
}

/// The caller's scope now, or `None` when the session, token or account is no longer valid
/// (or cannot be checked: the browser reconnects, and is checked afresh). Roles are re-read,
/// so a changed role narrows (or widens) what the connection sees.
async fn still_allowed(st: &AppState, p: &Principal) -> Option<Scope> {
    let fresh = revalidate(st, p).await.ok()??;
    if !fresh.authz.has(Permission::ServersRead) {
        return None;
    }
    Some(scope_of(&fresh))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_against_the_catalog() {
        assert_eq!(
            parse_names(Some("cpu.usage, mem.used_pct,cpu.usage")).expect("valid"),
            vec!["cpu.usage", "mem.used_pct"]
        );
        let cpu = parse_names(Some("cpu.*")).expect("group");
        assert!(cpu.contains(&"cpu.steal") && cpu.iter().all(|n| n.starts_with("cpu.")));
        assert!(parse_names(Some("cpu.nope")).is_err());
        assert!(parse_names(Some("nope.*")).is_err());
        assert!(parse_names(Some("*")).is_err());
        assert!(parse_names(Some(" , ")).is_err());
        assert!(parse_names(None).is_err());
    }

    #[test]
    fn times_are_rfc3339_or_milliseconds() {
        assert_eq!(
            parse_when("from", Some("1700000000000")).ok(),
            Some(Some(1_700_000_000_000))
        );
        assert_eq!(
            parse_when("from", Some("2023-11-14T22:13:20Z")).ok(),
            Some(Some(1_700_000_000_000))
        );
        assert!(parse_when("from", Some("yesterday")).is_err());
        assert_eq!(parse_when("from", None).ok(), Some(None));
    }
}
