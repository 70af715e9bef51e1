//! Security headers on every response.
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;

/// The Content-Security-Policy: same-origin scripts, styles and connections only; no inline
/// script; never framed.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// Adds the security headers (and `Cache-Control: no-store` on API answers; HSTS when
/// Steward is reached over HTTPS).
pub async fn headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let is_api = req.uri().path().starts_with("/api/");
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
    if state.config.secure_cookies {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    if is_api && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// The host and port part of an origin or URL (`https://a.example:8443/x` → `a.example:8443`).
fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or(rest)
}

/// Refuses a WebSocket opened by another site's page: the browser sends our cookies along with
/// any page's upgrade request, so a present `Origin` must name the host the request was sent
/// to, or the configured public URL's (behind a proxy that rewrites `Host`). Clients that are
/// not browsers send no `Origin` and are authenticated like any request. One check, one error
/// code (`cross_origin`), for every WebSocket Steward serves to users.
pub fn require_same_origin(
    st: &AppState,
    headers: &axum::http::HeaderMap,
) -> crate::error::ApiResult<()> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let same = origin.to_str().is_ok_and(|o| {
        let o = authority(o);
        (!host.is_empty() && o.eq_ignore_ascii_case(host))
            || o.eq_ignore_ascii_case(authority(&st.config.public_url))
    });
    if same {
        Ok(())
    } else {
        Err(crate::error::ApiError::forbidden(
            "connection refused: it was opened from another site's page, not Steward's",
        )
        .with_code("cross_origin"))
    }
}

#[cfg(test)]
mod tests {
    use super::authority;

    #[test]
    fn authority_of_origins_and_urls() {
        assert_eq!(authority("https://a.example:8443"), "a.example:8443");
        assert_eq!(authority("http://a.example/x?y"), "a.example");
        assert_eq!(authority("null"), "null");
    }
}
