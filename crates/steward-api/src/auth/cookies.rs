//! The browser's session cookies: HttpOnly, SameSite=Strict.
//!
//! Served over HTTPS (`--public-url https://…`), both carry the `__Host-` prefix: a browser
//! accepts such a cookie only with `Secure`, `Path=/` and no `Domain`, set by this very host
//! over HTTPS — so neither a sibling subdomain nor a plain-HTTP page on the same name can plant
//! or overwrite one (cookie tossing; e.g. forcing a victim into the attacker's session). That
//! is why the refresh cookie is `Path=/` there too (`__Host-` allows no other path): it then
//! travels with every request to Steward, which reads it only at `/auth/refresh` and never
//! logs a `Cookie` header. Over plain HTTP (development, or TLS not yet set up) browsers refuse
//! prefixed names, so the names stay `steward_access` (`Path=/`) and `steward_refresh`
//! (`Path=/api/v1/auth`).
use axum::http::{HeaderMap, HeaderValue, header};
use cookie::{Cookie, SameSite};

/// The access cookie's name over plain HTTP (the name in the OpenAPI document).
pub const ACCESS: &str = "steward_access";
/// The refresh cookie's name over plain HTTP.
pub const REFRESH: &str = "steward_refresh";
/// The access cookie's name over HTTPS.
pub const HOST_ACCESS: &str = "__Host-steward_access";
/// The refresh cookie's name over HTTPS.
pub const HOST_REFRESH: &str = "__Host-steward_refresh";
const REFRESH_PATH: &str = "/api/v1/auth";

/// The names and paths of the two cookies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Names {
    pub access: &'static str,
    pub refresh: &'static str,
    refresh_path: &'static str,
}

/// The cookies Steward uses when served over HTTPS (`secure`) or not.
pub fn names(secure: bool) -> Names {
    if secure {
        Names {
            access: HOST_ACCESS,
            refresh: HOST_REFRESH,
            refresh_path: "/",
        }
    } else {
        Names {
            access: ACCESS,
            refresh: REFRESH,
            refresh_path: REFRESH_PATH,
        }
    }
}

fn build(
    name: &'static str,
    value: String,
    path: &'static str,
    max_age: i64,
    secure: bool,
) -> Option<HeaderValue> {
    let c = Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .path(path)
        .max_age(cookie::time::Duration::seconds(max_age))
        .build();
    HeaderValue::from_str(&c.to_string()).ok()
}

/// Adds Set-Cookie headers for a fresh token pair.
pub fn set(
    headers: &mut HeaderMap,
    access: &str,
    access_ttl: i64,
    refresh: &str,
    refresh_ttl: i64,
    secure: bool,
) {
    let n = names(secure);
    if let Some(v) = build(n.access, access.to_string(), "/", access_ttl, secure) {
        headers.append(header::SET_COOKIE, v);
    }
    if let Some(v) = build(
        n.refresh,
        refresh.to_string(),
        n.refresh_path,
        refresh_ttl,
        secure,
    ) {
        headers.append(header::SET_COOKIE, v);
    }
}

/// Adds Set-Cookie headers that delete both cookies.
pub fn clear(headers: &mut HeaderMap, secure: bool) {
    let n = names(secure);
    if let Some(v) = build(n.access, String::new(), "/", 0, secure) {
        headers.append(header::SET_COOKIE, v);
    }
    if let Some(v) = build(n.refresh, String::new(), n.refresh_path, 0, secure) {
        headers.append(header::SET_COOKIE, v);
    }
}

/// A cookie's value from the request.
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}
