//! The dashboard's files, without a browser: served with the right type,
//! a self-only Content-Security-Policy, and no stale caching.

use crate::support::SessionManager;

async fn fetch(sm: &SessionManager, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let resp = client
        .get(format!("{}{path}", sm.url))
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.expect("body"))
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .expect("ascii header")
}

#[tokio::test]
async fn dashboard_files_are_served_with_type_and_policy() {
    let sm = SessionManager::start();
    for (path, content_type, marker) in [
        ("/", "text/html; charset=utf-8", "<!doctype html>"),
        ("/app.js", "text/javascript; charset=utf-8", "EventSource"),
        (
            "/style.css",
            "text/css; charset=utf-8",
            "@media (max-width: 699px)",
        ),
        ("/favicon.svg", "image/svg+xml", "<svg"),
        ("/favicon.ico", "image/svg+xml", "<svg"),
    ] {
        let (status, headers, body) = fetch(&sm, path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(header(&headers, "content-type"), content_type, "{path}");
        assert_eq!(header(&headers, "cache-control"), "no-cache", "{path}");
        assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
        let csp = header(&headers, "content-security-policy");
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        assert!(body.contains(marker), "{path} lacks {marker}");
    }
}

#[tokio::test]
async fn the_page_references_its_script_and_style_only() {
    let sm = SessionManager::start();
    let (_, _, html) = fetch(&sm, "/").await;
    assert!(html.contains(r#"<script src="app.js" defer></script>"#));
    assert!(html.contains(r#"<link rel="stylesheet" href="style.css">"#));
    assert!(html.contains(r#"<link rel="icon" href="favicon.svg" type="image/svg+xml">"#));
    // Nothing inline that the policy would block, nothing from elsewhere.
    assert_eq!(html.matches("<script").count(), 1);
    assert!(!html.contains("<style") && !html.contains("style=\""));
    assert!(!html.contains("http://") && !html.contains("https://"));
    // The page's script never puts event data in as markup.
    let (_, _, js) = fetch(&sm, "/app.js").await;
    assert!(!js.contains("innerHTML") && !js.contains("insertAdjacentHTML"));
}

#[tokio::test]
async fn the_api_still_answers_json_next_to_the_page() {
    let sm = SessionManager::start();
    let (status, body) = sm.http().get("/sessions").await;
    assert_eq!((status, body), (200, serde_json::json!({"sessions": []})));
    let (status, body) = sm.http().get("/nope.js").await;
    assert_eq!(status, 404);
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no route"))
    );
}

/// What the page asks before it offers buttons: whether it may act, and a
/// project's agents (which only a client that may act is told).
#[tokio::test]
async fn access_and_a_projects_agents_for_the_forms() {
    let sm = SessionManager::start();
    let (status, body) = sm.http().get("/access").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["may_act"], false);
    assert!(
        body["how"].as_str().unwrap().contains("ao-dashboard"),
        "{body}"
    );
    let owner = sm.http().with_token(&sm.local_token());
    let (_, body) = owner.get("/access").await;
    assert_eq!(body, serde_json::json!({"may_act": true}));
    let (_, body) = sm.http().with_token("wrong").get("/access").await;
    assert_eq!(body["may_act"], false);

    let project = tempfile::tempdir().unwrap();
    let agents = project.path().join(".claude/agents");
    std::fs::create_dir_all(&agents).unwrap();
    std::fs::write(
        agents.join("reviewer.md"),
        "---\nname: reviewer\ndescription: Reviews a change\n---\nYou review.\n",
    )
    .unwrap();
    let query = format!(
        "/agents?project_dir={}",
        project.path().to_str().unwrap().replace('/', "%2F")
    );
    let (status, body) = sm.http().get(&query).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = owner.get(&query).await;
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"reviewer"), "{body}");
    let reviewer = body["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "reviewer")
        .unwrap();
    assert_eq!(reviewer["description"], "Reviews a change");
    let (status, body) = owner.get("/agents?project_dir=relative").await;
    assert_eq!(status, 422, "{body}");
}
