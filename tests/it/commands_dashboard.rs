//! `ao-dashboard`: the link that opens the dashboard logged in, with the
//! local token or the configured one; `--json`, `--open`, and the errors.

use std::os::unix::fs::PermissionsExt;

use serde_json::{Value, json};

use crate::security::{TOKEN, token_server};
use crate::support::Project;

/// GETs `url` without following redirects, with `cookie` when given:
/// the status, and the `Set-Cookie` pair (`name=value`) when one was set.
async fn get(url: &str, cookie: Option<&str>) -> (u16, Option<String>) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut request = client.get(url);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    (response.status().as_u16(), cookie)
}

#[tokio::test]
async fn ao_dashboard_prints_a_link_whose_local_token_logs_in() {
    let p = Project::with_server();
    let link = p.ao("ao-dashboard", &[], None).ok().to_owned();
    let token = std::fs::read_to_string(p.sm().local_token_file()).unwrap();
    let token = token.trim();
    assert_eq!(link, format!("{}/?token={token}", p.url()));

    let (status, cookie) = get(&link, None).await;
    assert_eq!(status, 303, "the server takes the token");
    assert_eq!(cookie, Some(format!("ao_token={token}")));
    let (status, _) = get(&format!("{}/?token=not-{token}", p.url()), None).await;
    assert_eq!(status, 401, "and no other");

    let out = p.ao("ao-dashboard", &["--json"], None);
    let answer: Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(
        answer,
        json!({"url": link, "dashboard_url": format!("{}/", p.url()),
               "token_source": "local", "opened": false})
    );
}

#[tokio::test]
async fn with_a_configured_token_the_link_carries_that_one() {
    let (sm, _dir) = token_server();
    let mut p = Project::new(&sm.url);
    p.set_env("AGENT_ORCHESTRATOR_TOKEN", TOKEN);
    let link = p.ao("ao-dashboard", &[], None).ok().to_owned();
    assert_eq!(link, format!("{}/?token={TOKEN}", sm.url));
    let (status, cookie) = get(&link, None).await;
    assert_eq!(status, 303);
    let cookie = cookie.expect("a cookie");
    assert_eq!(get(&format!("{}/", sm.url), Some(&cookie)).await.0, 200);
    assert_eq!(get(&format!("{}/", sm.url), None).await.0, 401);
    let out = p.ao("ao-dashboard", &["--json"], None);
    let answer: Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(answer["token_source"], "configured");

    p.set_env("AGENT_ORCHESTRATOR_TOKEN", "wrong-token");
    let out = p.ao("ao-dashboard", &[], None);
    let line = out.fails(1);
    assert!(
        line.contains("refused the token in AGENT_ORCHESTRATOR_TOKEN: wrong token"),
        "{line}"
    );
}

#[tokio::test]
async fn without_a_session_manager_or_its_token_there_is_no_link() {
    let p = Project::offline();
    let line = p.ao("ao-dashboard", &[], None).fails(1).to_owned();
    assert!(
        line.starts_with(&format!(
            "ao-dashboard: error: no session manager answers at {}",
            p.url()
        )) && line.contains("`ao-session-manager`"),
        "{line}"
    );

    // A session manager whose local token is not this user's.
    let theirs = Project::with_server();
    let mut p = Project::new(theirs.url());
    let line = p.ao("ao-dashboard", &[], None).fails(1).to_owned();
    assert!(
        line.contains("no token to log in with")
            && line.contains("AGENT_ORCHESTRATOR_LOCAL_TOKEN_FILE"),
        "{line}"
    );
    let other = p.scratch().join("other-token");
    std::fs::write(&other, "another-users-token\n").unwrap();
    p.set_env(
        "AGENT_ORCHESTRATOR_LOCAL_TOKEN_FILE",
        other.to_str().unwrap(),
    );
    let line = p.ao("ao-dashboard", &[], None).fails(1).to_owned();
    assert!(
        line.contains("refused the local token of this user") && line.contains("wrong token"),
        "{line}"
    );
}

#[tokio::test]
async fn open_hands_the_link_to_the_browser_or_says_there_is_none() {
    let mut p = Project::with_server();
    let bin = p.scratch().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let opened = p.scratch().join("opened");
    let opener = bin.join("xdg-open");
    std::fs::write(
        &opener,
        format!("#!/bin/sh\necho \"$1\" > '{}'\n", opened.display()),
    )
    .unwrap();
    std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).unwrap();

    p.set_env("PATH", bin.to_str().unwrap());
    let link = p.ao("ao-dashboard", &["--open"], None).ok().to_owned();
    assert!(link.contains("/?token="), "{link}");
    assert_eq!(std::fs::read_to_string(&opened).unwrap().trim(), link);
    let out = p.ao("ao-dashboard", &["--open", "--json"], None);
    let answer: Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(answer["opened"], true);

    p.set_env("PATH", "/nonexistent");
    let out = p.ao("ao-dashboard", &["--open"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout.trim(), link, "the link is printed all the same");
    assert_eq!(
        out.stderr_lines(),
        [
            "ao-dashboard: warning: cannot open a browser (there is no xdg-open here); open the link yourself"
        ]
    );
    let out = p.ao("ao-dashboard", &["--open", "--json"], None);
    let answer: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(answer["opened"], false);
}
