//! The web dashboard: `sluice server` serves the page and its assets without a
//! token, with a strict Content-Security-Policy, while the API stays protected.
//! Needs no test bed (no pipe is created).

mod common;
use common::*;

async fn get(srv: &SluiceServer, path: &str) -> reqwest::Response {
    srv.http.get(format!("{}{path}", srv.base())).send().await.unwrap()
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers().get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_is_served_without_token_and_api_stays_protected() {
    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;

    for path in ["/", "/ui", "/ui/"] {
        let r = get(&srv, path).await;
        assert_eq!(r.status().as_u16(), 200, "GET {path}");
        assert!(header(&r, "content-type").starts_with("text/html"), "GET {path}: {}", header(&r, "content-type"));
        let csp = header(&r, "content-security-policy");
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "GET {path}: CSP {csp:?}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("http"), "GET {path}: CSP {csp:?}");
        assert_eq!(header(&r, "x-content-type-options"), "nosniff");
        let html = r.text().await.unwrap();
        assert!(html.contains(r#"src="/ui/app.js""#) && html.contains(r#"href="/ui/app.css""#), "{html}");
        assert!(!html.contains("<script>") && !html.contains("style="), "inline script or style in the page");
        assert!(html.contains("api-token") && html.contains("SLUICE_API_TOKEN"), "the page explains where the token is");
    }

    let r = get(&srv, "/ui/app.js").await;
    assert_eq!(r.status().as_u16(), 200);
    assert!(header(&r, "content-type").starts_with("text/javascript"), "{}", header(&r, "content-type"));
    assert!(!header(&r, "content-security-policy").is_empty());
    let js = r.text().await.unwrap();
    for needle in [
        "/v1/pipes",
        "/pause",
        "/resume",
        "/resync",
        "/settings",
        "/tables",
        "/events",
        "drop_tables",
        "Authorization",
        "sessionStorage",
        "401",
        "/series?metric=",
        "/events?before=",
        "offline",
        "No such pipe",
        "createElementNS",
    ] {
        assert!(js.contains(needle), "app.js does not mention {needle:?}");
    }
    assert!(!js.contains("innerHTML") && !js.contains("outerHTML") && !js.contains("insertAdjacentHTML"), "app.js writes HTML");

    let r = get(&srv, "/ui/app.css").await;
    assert_eq!(r.status().as_u16(), 200);
    assert!(header(&r, "content-type").starts_with("text/css"));
    assert!(r.text().await.unwrap().contains(".state-running"));

    // The API itself still needs the token.
    for path in ["/v1/pipes", "/v1/pipes/x", "/v1/pipes/x/events", "/openapi.json"] {
        assert_eq!(get(&srv, path).await.status().as_u16(), 401, "GET {path} without token");
    }
    let r = srv.http.post(format!("{}/v1/pipes", srv.base())).body("{}").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let (code, v) = srv.call(reqwest::Method::GET, "/v1/pipes", None).await;
    assert_eq!(code, 200, "{v}");
}
