//! The web UI, embedded in the binary (rust-embed; read from `web/dist` on disk in debug
//! builds). Hashed assets are cached for a year, `index.html` never; any path that is not an
//! API route or a file gets `index.html`, so the browser app can route it.
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

use crate::error::ApiError;

#[derive(Embed)]
#[folder = "../../web/dist"]
#[allow_missing = true]
struct Assets;

const INDEX: &str = "index.html";

fn file(path: &str, cache: &'static str) -> Option<Response> {
    let asset = Assets::get(path)?;
    let mime = asset.metadata.mimetype().to_string();
    let mut res = (StatusCode::OK, asset.data.into_owned()).into_response();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    let etag = format!("\"{}\"", hex::encode(&asset.metadata.sha256_hash()[..16]));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    Some(res)
}

/// Serves the UI for every path no other route claimed.
pub async fn fallback(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path == "api" || path.starts_with("api/") {
        return ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route").into_response();
    }
    if !path.is_empty() && path != INDEX {
        // Vite puts content-hashed files under assets/: they never change, so cache them.
        let cache = if path.starts_with("assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "public, max-age=3600"
        };
        if let Some(res) = file(path, cache) {
            return res;
        }
        // A missing file (it has an extension) is a 404, not the app.
        if path
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains('.'))
        {
            return (StatusCode::NOT_FOUND, "not found").into_response();
        }
    }
    file(INDEX, "no-cache").unwrap_or_else(|| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "The Steward web UI is not part of this build. Build it with `make build` \
             (or `npm ci && npm run build` in web/) and rebuild steward.\n",
        )
            .into_response()
    })
}
