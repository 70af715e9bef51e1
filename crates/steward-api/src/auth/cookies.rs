//! The browser's session cookies: HttpOnly, SameSite=Strict, `Secure` behind HTTPS.
use axum::http::{HeaderMap, HeaderValue, header};
use cookie::{Cookie, SameSite};

/// Holds the access token.
pub const ACCESS: &str = "steward_access";
/// Holds the refresh token; sent only to the auth endpoints.
pub const REFRESH: &str = "steward_refresh";
const REFRESH_PATH: &str = "/api/v1/auth";

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
    if let Some(v) = build(ACCESS, access.to_string(), "/", access_ttl, secure) {
        headers.append(header::SET_COOKIE, v);
    }
    if let Some(v) = build(
        REFRESH,
        refresh.to_string(),
        REFRESH_PATH,
        refresh_ttl,
        secure,
    ) {
        headers.append(header::SET_COOKIE, v);
    }
}

/// Adds Set-Cookie headers that delete both cookies.
pub fn clear(headers: &mut HeaderMap, secure: bool) {
    if let Some(v) = build(ACCESS, String::new(), "/", 0, secure) {
        headers.append(header::SET_COOKIE, v);
    }
    if let Some(v) = build(REFRESH, String::new(), REFRESH_PATH, 0, secure) {
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
