//! Reading and exporting the audit log (needs `audit.read`).
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::DateTime;
use steward_core::Permission;
use steward_db::audit::{self, AuditFilter, AuditRow};
use steward_proto::{AuditEvent, AuditPage, AuditQuery, ErrorBody};

use super::{tags, time};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, clean_query_text};
use crate::state::AppState;

/// The most events one export carries.
const EXPORT_LIMIT: i64 = 100_000;

fn view(r: AuditRow) -> AuditEvent {
    AuditEvent {
        at: time(r.at),
        details: serde_json::from_str(&r.details).unwrap_or_else(|_| serde_json::json!({})),
        id: r.id,
        actor_id: r.actor_id,
        actor_name: r.actor_name,
        source_ip: r.source_ip,
        action: r.action,
        target_type: r.target_type,
        target_id: r.target_id,
        target_name: r.target_name,
        outcome: r.outcome,
    }
}

fn parse_time(field: &str, v: &Option<String>) -> ApiResult<Option<i64>> {
    match v.as_deref().filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.timestamp_millis()))
            .map_err(|_| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("{field} must be an RFC 3339 time, like 2026-01-31T12:00:00Z"),
                )
            }),
    }
}

/// A CSV cell that spreadsheets will not run as a formula.
fn csv_cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

/// Events, newest first, with filters; `format=csv|json` downloads every match as a file.
#[utoipa::path(operation_id = "audit_list", get, path = "/api/v1/audit", tag = tags::AUDIT, params(AuditQuery),
    responses((status = 200, body = AuditPage, description = "a page; with `format`, a CSV or JSON file"), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    p: Principal,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    p.require(Permission::AuditRead)?;
    let q: AuditQuery = ApiQuery::from_uri(&uri)?;
    let format = q.format.as_deref().map(str::to_ascii_lowercase);
    let limit = match (&format, q.limit) {
        (Some(_), None) => EXPORT_LIMIT,
        (Some(_), Some(l)) if (1..=EXPORT_LIMIT).contains(&l) => l,
        (None, None) => 100,
        (None, Some(l)) if (1..=500).contains(&l) => l,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "limit is out of range (1–500; exports up to 100000)",
            ));
        }
    };
    let before = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => {
            let (at, id) = c
                .split_once('_')
                .ok_or_else(|| ApiError::bad_request("invalid_query", "cursor is not valid"))?;
            Some((
                at.parse::<i64>()
                    .map_err(|_| ApiError::bad_request("invalid_query", "cursor is not valid"))?,
                id.to_string(),
            ))
        }
    };
    if let Some(o) = q.outcome.as_deref()
        && !["success", "failure", "denied"].contains(&o)
    {
        return Err(ApiError::bad_request(
            "invalid_query",
            "outcome must be success, failure or denied",
        ));
    }
    let filter = AuditFilter {
        org_id: p.user.org_id.clone(),
        actor: clean_query_text("actor", q.actor.as_deref())?,
        action: clean_query_text("action", q.action.as_deref())?,
        target: clean_query_text("target", q.target.as_deref())?,
        outcome: clean_query_text("outcome", q.outcome.as_deref())?,
        from: parse_time("from", &q.from)?,
        to: parse_time("to", &q.to)?,
        before,
        limit,
    };
    let rows = audit::list(&st.db.pool, &filter).await?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    match format.as_deref() {
        None => {
            let next_cursor = (rows.len() as i64 == limit)
                .then(|| rows.last().map(|r| format!("{}_{}", r.at, r.id)))
                .flatten();
            Ok(Json(AuditPage {
                items: rows.into_iter().map(view).collect(),
                next_cursor,
            })
            .into_response())
        }
        Some("json") => {
            let items: Vec<AuditEvent> = rows.into_iter().map(view).collect();
            let body = serde_json::to_vec_pretty(&items).map_err(ApiError::internal)?;
            Ok(download(
                body,
                "application/json",
                &format!("steward-audit-{stamp}.json"),
            ))
        }
        Some("csv") => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let header = [
                "id",
                "time",
                "actor_id",
                "actor",
                "source_ip",
                "action",
                "target_type",
                "target_id",
                "target",
                "outcome",
                "details",
            ];
            w.write_record(header).map_err(ApiError::internal)?;
            for r in rows {
                let at = time(r.at).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                let fields = [
                    r.id,
                    at,
                    r.actor_id.unwrap_or_default(),
                    r.actor_name.unwrap_or_default(),
                    r.source_ip.unwrap_or_default(),
                    r.action,
                    r.target_type.unwrap_or_default(),
                    r.target_id.unwrap_or_default(),
                    r.target_name.unwrap_or_default(),
                    r.outcome,
                    r.details,
                ];
                w.write_record(fields.iter().map(|f| csv_cell(f)))
                    .map_err(ApiError::internal)?;
            }
            let body = w
                .into_inner()
                .map_err(|e| ApiError::internal(anyhow::anyhow!("csv: {e}")))?;
            Ok(download(
                body,
                "text/csv; charset=utf-8",
                &format!("steward-audit-{stamp}.csv"),
            ))
        }
        Some(_) => Err(ApiError::bad_request(
            "invalid_query",
            "format must be csv or json",
        )),
    }
}

fn download(body: Vec<u8>, content_type: &'static str, filename: &str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    (headers, body).into_response()
}
