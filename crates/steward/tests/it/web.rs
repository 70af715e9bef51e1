//! The embedded web UI: served with the right caching, compressed, compatible with the strict
//! CSP, and the app's own routes fall back to index.html while unknown API paths stay JSON.

use reqwest::StatusCode;
use steward_testkit::*;

fn require_built_ui() {
    let index = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/dist/index.html");
    assert!(
        index.exists(),
        "web/dist is missing: build the UI first (`make ui`)"
    );
}

#[tokio::test]
async fn the_ui_is_served_cached_compressed_and_csp_clean() {
    require_built_ui();
    let app = TestApp::spawn().await;
    let get = |path: &str, encoding: Option<&str>| {
        let mut req = app.client.get(app.url(path));
        if let Some(e) = encoding {
            req = req.header("accept-encoding", e);
        }
        req.send()
    };

    let res = get("/", None).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-cache");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let html = res.text().await.unwrap();
    // The strict CSP forbids inline scripts and styles: the built page must have none.
    for tag in html.split("<script").skip(1) {
        let open = tag.split('>').next().unwrap_or_default();
        assert!(
            open.contains("src="),
            "inline <script> in index.html: {open}"
        );
    }
    assert!(!html.contains("<style"), "inline <style> in index.html");
    let asset = html
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a script file")
        .to_string();
    assert!(asset.starts_with("/assets/"), "{asset}");

    // Routes of the app get the app.
    for path in [
        "/servers",
        "/servers/0191c4a0-0000-7000-8000-000000000000",
        "/setup?token=x",
        "/profile/security",
    ] {
        let res = get(path, None).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(res.text().await.unwrap(), html, "{path}");
    }

    // Hashed assets are immutable and compressed.
    let res = get(&asset, Some("gzip")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(res.headers()["content-encoding"], "gzip");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    assert!(res.headers().contains_key("etag"));

    // Unknown API paths stay JSON; missing files are plain 404s, not the app.
    let (s, b) = app
        .call(reqwest::Method::GET, "/api/v1/no-such-thing", None)
        .await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "not_found"));
    let (s, b) = app.call(reqwest::Method::GET, "/api/unknown", None).await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "not_found"));
    assert_eq!(
        get("/assets/missing-abc123.js", None)
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get("/favicon.svg", None).await.unwrap().status(),
        StatusCode::OK
    );
}
