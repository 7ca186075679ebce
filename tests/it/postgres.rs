//! The session manager on PostgreSQL: replicas sharing one database, the
//! database refusing, vanishing and coming back, and `--import`. Each test
//! starts a real PostgreSQL server (see `support::postgres`) and skips when
//! none is installed, unless `AO_REQUIRE_POSTGRES=1`. (Every other route is
//! tested on PostgreSQL by running the API suites with
//! `AO_TEST_STORE=postgres`.)

use std::io::Read;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::http::{assistant, event, kinds, run_kinds};
use crate::support::live::WsClient;
use crate::support::postgres::{PASSWORD, Postgres};
use crate::support::project::eventually;
use crate::support::{Project, SessionManager, command};

/// A fresh database on the shared server; `None` (skip) without PostgreSQL.
fn fresh() -> Option<(&'static Postgres, String)> {
    let pg = Postgres::shared()?;
    let url = pg.fresh_database();
    Some((pg, url))
}

/// Runs `ao-session-manager ARGS` to its end; answers its exit code, stdout
/// and stderr.
fn run_server(args: &[&str]) -> (Option<i32>, String, String) {
    let out = command("ao-session-manager")
        .args(["--port", "0"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The messages a live client receives until (and with) the first that
/// `last` accepts.
async fn until(ws: &mut WsClient, last: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let message = ws.next().await.expect("the feed stays open");
        let done = last(&message);
        seen.push(message);
        if done {
            return seen;
        }
    }
}

#[tokio::test]
async fn a_write_to_one_replica_reaches_the_live_clients_of_another_once() {
    let Some((_pg, url)) = fresh() else { return };
    let a = SessionManager::on_database(&url);
    let b = SessionManager::on_database(&url);
    let mut on_a = WsClient::connect(&a.url).await;
    let mut on_b = WsClient::connect(&b.url).await;
    assert_eq!(on_a.next().await.unwrap()["type"], "init");
    assert_eq!(on_b.next().await.unwrap()["type"], "init");

    a.http().create("s1", "one", Some("/p")).await;
    a.http().event("s1", assistant("s1", "hello from A")).await;
    // A marker written last, through B: every replica sees it after A's writes.
    b.http().create("marker", "marker", None).await;
    let is_marker = |m: &Value| m["session"]["session_id"] == "marker";
    for (name, ws) in [("A", &mut on_a), ("B", &mut on_b)] {
        // (Each replica's own host registering is news too: left aside.)
        let seen: Vec<Value> = until(ws, is_marker)
            .await
            .into_iter()
            .filter(|m| m["type"] != "host_updated")
            .collect();
        let types: Vec<&str> = seen.iter().map(|m| m["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            ["session_created", "event", "session_created"],
            "on {name}, each change once, in commit order: {seen:?}"
        );
        assert_eq!(seen[0]["session"]["session_name"], "one");
        assert_eq!(seen[1]["data"]["content"][0]["text"], "hello from A");
        assert!(seen[1]["data"]["id"].as_i64().unwrap() > 0);
    }
    // Reads through either replica see the same database at once.
    let (_, on_b_list) = b.http().get("/sessions").await;
    assert_eq!(on_b_list["sessions"].as_array().unwrap().len(), 2);
    assert_eq!(b.http().events("s1").await.len(), 1);
}

#[tokio::test]
async fn a_burst_of_events_on_one_replica_reaches_another_each_once_in_order() {
    let Some((_pg, url)) = fresh() else { return };
    let a = SessionManager::on_database(&url);
    let b = SessionManager::on_database(&url);
    let mut on_b = WsClient::connect(&b.url).await;
    assert_eq!(on_b.next().await.unwrap()["type"], "init");
    const SESSIONS: usize = 40;
    const EACH: usize = 25;
    for s in 0..SESSIONS {
        a.http()
            .create(&format!("s{s}"), &format!("n{s}"), None)
            .await;
    }
    // Forty runners at once, each posting in turn, one event twice; the
    // writer takes whatever waits into one statement.
    let runners: Vec<_> = (0..SESSIONS)
        .map(|s| {
            let http = a.http();
            tokio::spawn(async move {
                let id = format!("s{s}");
                let path = format!("/sessions/{id}/events");
                let mut repeated = Value::Null;
                for n in 0..EACH {
                    let mut e = event(&id, "post_tool");
                    e["event_id"] = json!(uuid::Uuid::new_v4());
                    e["tool_input"] = json!({"n": n});
                    let (status, answer) = http.send("POST", &path, Some(e.clone())).await;
                    assert_eq!(status, 200, "{answer}");
                    assert_ne!(answer["duplicate"], true, "{answer}");
                    if n == EACH / 2 {
                        repeated = e;
                    }
                }
                let (status, answer) = http.send("POST", &path, Some(repeated)).await;
                assert_eq!(
                    (status, &answer["duplicate"]),
                    (200, &json!(true)),
                    "{answer}"
                );
            })
        })
        .collect();
    let stray = a
        .http()
        .send(
            "POST",
            "/sessions/nobody/events",
            Some(event("nobody", "post_tool")),
        )
        .await;
    assert_eq!(stray.0, 404, "{}", stray.1);
    for runner in runners {
        runner.await.unwrap();
    }
    b.http().create("marker", "marker", None).await;
    let seen = until(&mut on_b, |m| m["session"]["session_id"] == "marker").await;
    let mut per_session = std::collections::HashMap::<String, Vec<i64>>::new();
    let mut ids = Vec::new();
    for m in seen.iter().filter(|m| m["type"] == "event") {
        let data = &m["data"];
        ids.push(data["id"].as_i64().unwrap());
        per_session
            .entry(data["session_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(data["tool_input"]["n"].as_i64().unwrap());
    }
    assert_eq!(per_session.len(), SESSIONS);
    let in_order: Vec<i64> = (0..EACH as i64).collect();
    for (session, ns) in &per_session {
        assert_eq!(ns, &in_order, "{session}: each once, in the order posted");
    }
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "B publishes in the order of the rows");
    for s in [0, SESSIONS - 1] {
        assert_eq!(b.http().events(&format!("s{s}")).await.len(), EACH);
    }
}

#[tokio::test]
async fn text_posted_to_one_replica_is_written_live_on_another_and_ends_there_with_its_event() {
    let Some((_pg, url)) = fresh() else { return };
    let a = SessionManager::on_database(&url);
    let b = SessionManager::on_database(&url);
    a.http().create("s1", "talk", Some("/p")).await;
    let mut on_b = WsClient::connect(&b.url).await;
    assert_eq!(on_b.next().await.unwrap()["type"], "init");
    let delta = |text: &str, seq: u64| json!({"type": "text_delta", "text": text, "message_id": "m1", "index": 0, "seq": seq});
    for (seq, text) in [(1, "Hel"), (2, "lo, wor")] {
        let (status, _) = a
            .http()
            .send("POST", "/sessions/s1/live", Some(delta(text, seq)))
            .await;
        assert_eq!(status, 200);
    }
    let seen = until(&mut on_b, |m| m["seq"] == 2).await;
    let texts: Vec<&Value> = seen
        .iter()
        .filter(|m| m["type"] == "text_delta")
        .map(|m| &m["text"])
        .collect();
    assert_eq!(texts, ["Hel", "lo, wor"], "{seen:?}");
    assert_eq!(seen.last().unwrap()["session_id"], "s1");
    // A page opened on B now starts from the text so far.
    assert_eq!(
        b.http().get("/sessions/s1/draft").await,
        (
            200,
            json!({"draft": {"message_id": "m1", "index": 0, "seq": 2, "text": "Hello, wor"}})
        )
    );
    // The message's event, posted to A, ends it on B too.
    let mut message = event("s1", "message");
    message["role"] = "assistant".into();
    message["content"] = json!([{"type": "text", "text": "Hello, world"}]);
    a.http().event("s1", message).await;
    until(&mut on_b, |m| m["type"] == "event").await;
    assert_eq!(
        b.http().get("/sessions/s1/draft").await,
        (200, json!({"draft": null}))
    );
    // Nothing of it was stored, and A's own clients heard it once (not
    // again through the database).
    assert_eq!(b.http().events("s1").await.len(), 1);
    let mut on_a = WsClient::connect(&a.url).await;
    assert_eq!(on_a.next().await.unwrap()["type"], "init");
    a.http()
        .send("POST", "/sessions/s1/live", Some(delta("Again", 1)))
        .await;
    b.http().create("marker", "marker", None).await;
    let seen = until(&mut on_a, |m| m["session"]["session_id"] == "marker").await;
    let deltas = seen.iter().filter(|m| m["type"] == "text_delta").count();
    assert_eq!(deltas, 1, "{seen:?}");
}

#[tokio::test]
async fn replicas_that_run_sessions_each_register_their_own_host() {
    let Some((_pg, url)) = fresh() else { return };
    let a = SessionManager::on_database_with(&url, &["--local-host-name", "replica-a"]);
    let b = SessionManager::on_database_with(&url, &["--local-host-name", "replica-b"]);
    // (Each registers before it answers: B first, so that both have.)
    for sm in [&b, &a] {
        let (_, hosts) = sm.http().get("/hosts").await;
        let mut names: Vec<(&str, bool, bool)> = hosts["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                let name = h["name"].as_str().unwrap();
                (name, h["embedded"] == true, h["online"] == true)
            })
            .collect();
        names.sort();
        assert_eq!(
            names,
            [("replica-a", true, true), ("replica-b", true, true)],
            "{hosts}"
        );
    }
}

#[tokio::test]
async fn a_batch_too_long_for_one_notification_names_every_event_over_several() {
    use agent_orchestrator::server::pg_bench_support::BenchConnection;
    use agent_orchestrator::wire::Event;
    use futures_util::StreamExt;

    let Some((_pg, url)) = fresh() else { return };
    let conn = BenchConnection::open(&url).await.unwrap();
    conn.execute(
        "INSERT INTO sessions (session_id, session_name, status, created_at)
         VALUES ('long', 'long', 'running', '2026-01-01T00:00:00.000Z')",
    )
    .await
    .unwrap();
    let (listener, mut connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let (tx, mut notes) = tokio::sync::mpsc::unbounded_channel();
    let stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    tokio::spawn(stream.for_each(move |m| {
        if let Ok(tokio_postgres::AsyncMessage::Notification(n)) = m {
            let _ = tx.send(n.payload().to_owned());
        }
        std::future::ready(())
    }));
    listener.batch_execute("LISTEN ao_changes").await.unwrap();

    let rows: Vec<(Event, String)> = (0..1000)
        .map(|n| {
            let mut e = event("long", "post_tool");
            e["event_id"] = json!(uuid::Uuid::new_v4());
            e["tool_input"] = json!({"n": n});
            (serde_json::from_value(e.clone()).unwrap(), e.to_string())
        })
        .collect();
    conn.store_events(&rows).await.unwrap();
    let stored: Vec<i64> = connect(&url)
        .await
        .query(
            "SELECT id FROM events WHERE session_id = 'long' ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(stored.len(), 1000);
    let ns: Vec<i64> = connect(&url)
        .await
        .query(
            "SELECT body::json->'tool_input'->>'n' FROM events ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0).parse().unwrap())
        .collect();
    assert_eq!(
        ns,
        (0..1000).collect::<Vec<i64>>(),
        "ids follow the order given"
    );

    let mut named = Vec::new();
    let mut parts = Vec::new();
    while named.len() < stored.len() {
        let payload = tokio::time::timeout(Duration::from_secs(10), notes.recv())
            .await
            .expect("every event named within 10 s")
            .unwrap();
        assert!(payload.len() < 8000, "{} bytes", payload.len());
        let mut words = payload.split(' ');
        parts.push(words.next().unwrap().to_owned());
        named.extend(words.map(|w| w.strip_prefix('e').unwrap().parse::<i64>().unwrap()));
    }
    assert_eq!(named, stored, "each id named once, in order");
    assert_eq!(parts, ["bench:0.0", "bench:0.1", "bench:0.2", "bench:0.3"]);
}

#[tokio::test]
async fn a_stop_posted_to_one_replica_reaches_the_runner_attached_to_another() {
    let Some((_pg, url)) = fresh() else { return };
    let a = SessionManager::on_database(&url);
    let b = SessionManager::on_database(&url);
    // The run reports to A and follows its feed there.
    let here = Project::new(&a.url);
    let runner = here.start_hanging("far").await;
    let id = here.session_id("far");
    let (status, answer) = b
        .http()
        .post(&format!("/sessions/{id}/stop"), json!({}))
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["delivered"], true, "{answer}");
    let out = runner.wait();
    assert_eq!(out.code, Some(143), "{out:?}");
    eventually("the stopped run to end in the database", async || {
        b.http().status(&id).await == "finished"
    })
    .await;
    let events = b.http().events(&id).await;
    assert_eq!(events.last().unwrap()["reason"], "stopped", "{events:?}");
    // ao-stop through B, for a run whose runner follows A, says stopped too.
    let runner = here.start_hanging("far2").await;
    let elsewhere = Project::new(&b.url);
    assert_eq!(
        elsewhere.ao("ao-stop", &["far2"], None).ok(),
        "far2: stopped"
    );
    assert_eq!(runner.wait().code, Some(143));
}

#[tokio::test]
async fn a_decision_posted_to_one_replica_reaches_the_runner_attached_to_another() {
    let Some((_pg, url)) = fresh() else { return };
    let a = SessionManager::on_database(&url);
    let b = SessionManager::on_database(&url);
    // The run reports to A and follows its feed there; it waits for a
    // permission to write out.txt.
    let here = Project::new(&a.url);
    let runner = here.spawn(
        "ao-new",
        &["asks", "--permission-mode", "default"],
        "do it",
        "permission:out.txt",
    );
    let mut id = String::new();
    let mut waiting = Vec::new();
    eventually("the request, seen through B", async || {
        let (_, list) = b.http().get("/sessions?name=asks").await;
        let Some(session) = list["sessions"].as_array().and_then(|s| s.first()) else {
            return false;
        };
        id = session["session_id"].as_str().unwrap().to_owned();
        let (_, requests) = b.http().get(&format!("/sessions/{id}/requests")).await;
        waiting = requests["requests"].as_array().cloned().unwrap_or_default();
        waiting.len() == 1 && session["pending_requests"] == 1
    })
    .await;
    let request_id = waiting[0]["request_id"].as_str().unwrap();
    let path = format!("/sessions/{id}/requests/{request_id}");
    let decider = b.http().with_token(&b.local_token());
    let (status, body) = decider.post(&path, json!({"decision": "allow"})).await;
    assert_eq!((status, &body), (200, &json!({"ok": true})));
    // Taken once, whichever replica is asked next.
    let again = a.http().with_token(&a.local_token());
    let (status, body) = again.post(&path, json!({"decision": "deny"})).await;
    assert_eq!(status, 409, "{body}");
    let out = runner.wait();
    assert!(out.stdout.contains("[permission: allowed]"), "{out:?}");
    assert!(here.dir.join("out.txt").exists(), "the tool ran");
    let (_, session) = a.http().get(&format!("/sessions/{id}")).await;
    assert_eq!(session["session"]["pending_requests"], 0, "{session}");
    let (_, record) = b.http().get(&path).await;
    assert_eq!(record["request"]["status"], "closed", "{record}");
    assert_eq!(
        record["request"]["decision"]["decided_by"], "person",
        "{record}"
    );
}

#[tokio::test]
async fn runs_posted_to_two_replicas_are_each_given_and_claimed_once() {
    let Some((_pg, url)) = fresh() else { return };
    let a = SessionManager::on_database_with(&url, &["--no-local-runs"]);
    let b = SessionManager::on_database_with(&url, &["--no-local-runs"]);
    let on_a = a.http().with_token(&a.local_token());
    let on_b = b.http().with_token(&b.local_token());
    let host = json!({"name": "h", "instance": "i1", "capacity": 100, "projects": []});
    let (status, body) = on_a.post("/hosts", host).await;
    assert_eq!(status, 200, "{body}");
    // 20 runs, posted to both replicas at once.
    let posts = (0..20).map(|n| {
        let http = if n % 2 == 0 {
            on_a.clone()
        } else {
            on_b.clone()
        };
        async move {
            let run = json!({"session_name": format!("r{n}"), "prompt": "p",
                "project_dir": "/p", "host": "h"});
            http.post("/runs", run).await
        }
    });
    let mut ids = Vec::new();
    for (status, body) in futures_util::future::join_all(posts).await {
        assert_eq!(status, 202, "{body}");
        ids.push(body["run"]["run_id"].as_str().unwrap().to_owned());
    }
    // Each claimed through both replicas at once: one claim takes it.
    let claims = ids.iter().map(|id| {
        let (on_a, on_b) = (on_a.clone(), on_b.clone());
        async move {
            let claim = json!({"host": "h", "instance": "i1"});
            let path = format!("/runs/{id}/claim");
            tokio::join!(on_a.post(&path, claim.clone()), on_b.post(&path, claim))
        }
    });
    for (first, second) in futures_util::future::join_all(claims).await {
        let mut statuses = [first.0, second.0];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "one claim each: {first:?} {second:?}");
    }
    let (_, runs) = b.http().get("/runs?host=h").await;
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 20);
    assert!(
        runs.iter()
            .all(|r| r["status"] == "starting" && r["host"] == "h"),
        "{runs:?}"
    );
    let (_, hosts) = a.http().get("/hosts").await;
    assert_eq!(hosts["hosts"][0]["running"], 20, "{hosts}");
}

#[test]
fn an_unreachable_database_is_one_line_naming_host_and_port_and_one_attempt() {
    // Something listens, but it is no database: it counts the attempts.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let url = format!("postgres://ao@127.0.0.1:{port}/ao");
    let (code, stdout, stderr) = run_server(&["--db", &url]);
    let mut attempts = 0;
    while let Ok((mut stream, _)) = listener.accept() {
        attempts += 1;
        let _ = stream.read(&mut [0; 64]);
    }
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert_eq!(attempts, 1, "no retry storm");

    // Nothing listens at all.
    drop(listener);
    let (code, _, stderr) = run_server(&["--db", &url]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("cannot reach the database at 127.0.0.1:{port}")),
        "{stderr}"
    );
}

#[test]
fn a_wrong_password_is_one_line_that_never_shows_a_secret() {
    let Some((pg, _)) = fresh() else { return };
    let secret = "not-the-password-7f3a";
    let url = format!("postgres://ao:{secret}@127.0.0.1:{}/postgres", pg.port);
    let (code, stdout, stderr) = run_server(&["--db", &url]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("password authentication failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("127.0.0.1:{}", pg.port)),
        "{stderr}"
    );
    assert!(
        !stderr.contains(secret) && !stderr.contains(PASSWORD),
        "{stderr}"
    );
    // The same through PGPASSWORD, with the URL naming no password.
    let url = format!("postgres://ao@127.0.0.1:{}/postgres", pg.port);
    let out = command("ao-session-manager")
        .args(["--port", "0", "--db", &url])
        .env("PGPASSWORD", secret)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains(secret), "{stderr}");
}

#[tokio::test]
async fn a_newer_or_foreign_postgres_database_is_refused_clearly() {
    let Some((_pg, url)) = fresh() else { return };
    {
        let mut sm = SessionManager::on_database(&url);
        assert_eq!(sm.stop(), Some(0));
    }
    let client = connect(&url).await;
    client
        .execute("UPDATE ao_schema SET version = version + 1", &[])
        .await
        .unwrap();
    let (code, _, stderr) = run_server(&["--db", &url]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("newer"), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");

    let Some((_, other)) = fresh() else { return };
    connect(&other)
        .await
        .batch_execute("CREATE TABLE notes (x TEXT)")
        .await
        .unwrap();
    let (code, _, stderr) = run_server(&["--db", &other]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("tables of something else"), "{stderr}");
}

/// A plain connection to `url`, for the test to look inside.
async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn the_database_going_away_mid_run_is_503_then_every_event_arrives() {
    // A server of its own: this test stops it.
    let Some(mut pg) = Postgres::start() else {
        return;
    };
    pg.create_database("ao");
    let sm = SessionManager::on_database(&pg.url("ao"));
    let env = Project::new(&sm.url);
    let runner = env.spawn("ao-new", &["busy"], "go", "tools:30,slow:20");
    eventually("four tool calls stored", async || {
        env.session("busy").await.is_some()
            && kinds(&env.events("busy").await)
                .iter()
                .filter(|k| *k == "post_tool")
                .count()
                >= 4
    })
    .await;
    pg.stop();
    let id = env.session_id("busy");
    let (status, answer) = sm
        .http()
        .send(
            "POST",
            &format!("/sessions/{id}/events"),
            Some(event(&id, "pre_tool")),
        )
        .await;
    assert_eq!(status, 503, "{answer}");
    let detail = answer["detail"].as_str().unwrap();
    assert!(detail.contains("retry"), "{detail}");
    assert_eq!(sm.http().get(&format!("/sessions/{id}")).await.0, 503);
    tokio::time::sleep(Duration::from_millis(500)).await;
    pg.restart();
    assert_eq!(runner.wait().ok(), "fake answer to: go");
    let events = env.events("busy").await;
    assert_eq!(kinds(&events), run_kinds(30), "each once, in order");
    let outputs: Vec<&str> = crate::support::http::tool_calls(&events)
        .iter()
        .map(|e| e["tool_output"]["stdout"].as_str().unwrap())
        .collect();
    let want: Vec<String> = (1..=30).map(|n| format!("tool-{n}")).collect();
    assert_eq!(outputs, want);
    // The live feed works again too, and says that it may have missed some.
    let mut ws = WsClient::connect(&sm.url).await;
    assert_eq!(ws.next().await.unwrap()["type"], "init");
    sm.http().create("after", "after", None).await;
    assert_eq!(ws.next().await.unwrap()["type"], "session_created");
    assert!(
        sm.log_text().contains("reconnected to the database"),
        "{}",
        sm.log_text()
    );
}

/// Fills a SQLite database through a session manager: sessions with events
/// and run ends (with figures), and answers what the API says of it.
async fn sqlite_with_data() -> (SessionManager, Vec<Value>) {
    let mut sm = SessionManager::start_sqlite();
    let http = sm.http();
    for n in 0..3 {
        let id = format!("s{n}");
        http.create(&id, &format!("name {n}"), Some("/p")).await;
        http.event(&id, event(&id, "run_start")).await;
        http.event(&id, assistant(&id, &format!("answer {n}")))
            .await;
        if n == 2 {
            // A request, closed with its run.
            let mut asked = event(&id, "permission_request");
            asked["request_id"] = json!("q1");
            asked["kind"] = json!("permission");
            asked["tool_name"] = json!("Bash");
            asked["tool_input"] = json!({"command": "ls"});
            http.event(&id, asked).await;
        }
        let mut end = event(&id, "run_completed");
        end["reason"] = json!("completed");
        end["cost_usd"] = json!(0.25 * f64::from(n + 1));
        end["usage"] = json!({"input_tokens": 10 * (n + 1), "output_tokens": 5});
        http.event(&id, end).await;
    }
    // A host, and a run given to it (besides the server's own host).
    let actor = http.clone().with_token(&sm.local_token());
    let host = json!({"name": "h", "instance": "i1", "capacity": 2, "labels": ["gpu"]});
    assert_eq!(actor.post("/hosts", host).await.0, 200);
    let run = json!({"session_name": "later", "prompt": "p", "project_dir": "/p", "host": "h"});
    assert_eq!(actor.post("/runs", run).await.0, 202);
    // A tree's budget, and a callback a child's run owes its parent.
    assert_eq!(
        http.patch("/sessions/s1", json!({"budget_usd": 5.0}))
            .await
            .0,
        200
    );
    let callback = json!({"child_run_id": "6f1f4b52-0c1e-4a51-9d7a-2b3c4d5e6f70", "child_session_name": "kid",
        "parent_session_id": "s1"});
    assert_eq!(actor.post("/callbacks", callback).await.0, 201);
    let answers = answers(&http).await;
    assert_eq!(sm.stop(), Some(0));
    (sm, answers)
}

/// What the API answers about the sessions, their runs and requests.
async fn answers(http: &crate::support::Http) -> Vec<Value> {
    let (_, usage) = http.get("/usage?group_by=session").await;
    let (_, list) = http.get("/sessions").await;
    let (_, runs) = http.get("/runs").await;
    let mut answers = vec![usage, list, runs];
    for n in 0..3 {
        answers.push(http.events(&format!("s{n}")).await.into());
        answers.push(http.get(&format!("/sessions/s{n}/result")).await.1);
    }
    answers.push(http.get("/sessions/s2/requests/q1").await.1);
    answers.push(http.get("/sessions/s1/callbacks").await.1);
    answers
}

#[tokio::test]
async fn import_copies_a_sqlite_database_counted_per_table_and_again_copies_nothing() {
    let Some((_pg, url)) = fresh() else { return };
    let (old, answers_before) = sqlite_with_data().await;
    let source = format!("sqlite:{}", old.db.display());
    let (code, stdout, stderr) = run_server(&["--db", &url, "--import", &source]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        "sessions: 3 in the file, 3 copied, 0 already there\n\
         events: 10 in the file, 10 copied, 0 already there\n\
         runs: 3 in the file, 3 copied, 0 already there\n\
         requests: 1 in the file, 1 copied, 0 already there\n\
         hosts: 2 in the file, 2 copied, 0 already there\n\
         launches: 1 in the file, 1 copied, 0 already there\n\
         callbacks: 1 in the file, 1 copied, 0 already there\n"
    );
    let (code, stdout, stderr) = run_server(&["--db", &url, "--import", &source]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        "sessions: 3 in the file, 0 copied, 3 already there\n\
         events: 10 in the file, 0 copied, 10 already there\n\
         runs: 3 in the file, 0 copied, 3 already there\n\
         requests: 1 in the file, 0 copied, 1 already there\n\
         hosts: 2 in the file, 0 copied, 2 already there\n\
         launches: 1 in the file, 0 copied, 1 already there\n\
         callbacks: 1 in the file, 0 copied, 1 already there\n",
        "idempotent"
    );
    // The API on PostgreSQL answers exactly what it answered on SQLite.
    let sm = SessionManager::on_database(&url);
    let http = sm.http();
    assert_eq!(answers(&http).await, answers_before);
    let (_, hosts) = http.get("/hosts").await;
    assert_eq!(hosts["hosts"][0]["name"], "h", "{hosts}");
    assert_eq!(hosts["hosts"][0]["labels"], json!(["gpu"]), "{hosts}");
    // New events get ids after the imported ones.
    http.event("s0", event("s0", "pre_tool")).await;
    let ids: Vec<i64> = http
        .events("s0")
        .await
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
}

#[tokio::test]
async fn import_into_a_database_with_other_data_needs_merge() {
    let Some((_pg, url)) = fresh() else { return };
    {
        let sm = SessionManager::on_database(&url);
        sm.http().create("theirs", "theirs", Some("/p")).await;
        sm.http().event("theirs", event("theirs", "pre_tool")).await;
    }
    let (old, _) = sqlite_with_data().await;
    let source = format!("sqlite:{}", old.db.display());
    let (code, stdout, stderr) = run_server(&["--db", &url, "--import", &source]);
    assert_eq!(code, Some(1), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("1 sessions that are not in") && stderr.contains("--merge"),
        "{stderr}"
    );
    assert!(!stderr.contains(PASSWORD), "{stderr}");
    let (code, stdout, stderr) = run_server(&["--db", &url, "--import", &source, "--merge"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.starts_with("sessions: 3 in the file, 3 copied"),
        "{stdout}"
    );
    let sm = SessionManager::on_database(&url);
    let (_, list) = sm.http().get("/sessions").await;
    assert_eq!(list["sessions"].as_array().unwrap().len(), 4);
    // Both sessions' events, with ids that do not collide.
    assert_eq!(sm.http().events("theirs").await.len(), 1);
    assert_eq!(sm.http().events("s2").await.len(), 4);

    // Bad input: not sqlite:PATH, no PostgreSQL target, a missing file.
    let (code, _, stderr) = run_server(&["--db", &url, "--import", "/x.db"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("sqlite:PATH"), "{stderr}");
    let (code, _, stderr) = run_server(&["--db", "/tmp/x.db", "--import", &source]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("--db postgres://"), "{stderr}");
    let (code, _, stderr) = run_server(&["--db", &url, "--import", "sqlite:/nowhere/x.db"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("does not exist"), "{stderr}");
}
