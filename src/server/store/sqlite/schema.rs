//! The database layout and its migrations. `PRAGMA user_version` records
//! which migrations a file has had, so a later release can upgrade an old
//! file in place and an older release refuses a newer file.

use rusqlite::Connection;

use super::StoreError;
use super::search::{index_new, searchable_text};

/// Marks a SQLite file as ours, so `--db` pointed at some other database is
/// refused instead of modified ("AOSM" in ASCII).
const APPLICATION_ID: i64 = 0x414F_534D;

/// Each entry moves the schema from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: sessions and events.
    "CREATE TABLE sessions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL UNIQUE,
        session_name TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        project_dir TEXT,
        agent_name TEXT,
        last_resumed_at TEXT
    );
    CREATE UNIQUE INDEX sessions_name_project ON sessions (session_name, IFNULL(project_dir, ''));
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL,
        event_id TEXT,
        event_type TEXT NOT NULL,
        role TEXT,
        body TEXT NOT NULL
    );
    CREATE INDEX events_session ON events (session_id, id);
    CREATE UNIQUE INDEX events_event_id ON events (session_id, event_id) WHERE event_id IS NOT NULL;",
    // 2: the sessions of one project (`GET /sessions?project_dir=P`), newest first.
    "CREATE INDEX sessions_project ON sessions (IFNULL(project_dir, ''), seq);",
    // 3: what runs cost. One `runs` row per run end (its id is the row id
    // of the run_completed event), with the figures in columns SQLite can
    // add up, and the project and agent copied in so that `GET /usage`
    // groups without a join; each session keeps its totals. Runs stored
    // before this migration get a row without figures (`ao-sync` fills
    // them in from the backups). A run's id is its event's, so the runs of
    // a session are found through the events' index: `runs` keeps only the
    // table itself: no index to write per run (`since` reads the whole
    // table, a few megabytes for 100,000 runs).
    "ALTER TABLE sessions ADD COLUMN num_runs INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN cost_usd REAL;
    ALTER TABLE sessions ADD COLUMN input_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN output_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN cache_creation_input_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN cache_read_input_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN last_reason TEXT;
    ALTER TABLE sessions ADD COLUMN last_exit_code INTEGER;
    ALTER TABLE sessions ADD COLUMN last_duration_ms INTEGER;
    ALTER TABLE sessions ADD COLUMN last_ended_at TEXT;
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL,
        project_dir TEXT,
        agent_name TEXT,
        ended_at TEXT NOT NULL,
        reason TEXT,
        exit_code INTEGER,
        cost_usd REAL,
        input_tokens INTEGER,
        output_tokens INTEGER,
        cache_creation_input_tokens INTEGER,
        cache_read_input_tokens INTEGER,
        num_turns INTEGER,
        duration_ms INTEGER,
        duration_api_ms INTEGER
    );
    CREATE INDEX runs_session_once ON runs (session_id, id);
    INSERT INTO runs (id, session_id, project_dir, agent_name, ended_at, reason, exit_code)
        SELECT e.id, e.session_id, s.project_dir, s.agent_name,
               IFNULL(strftime('%Y-%m-%dT%H:%M:%fZ', json_extract(e.body, '$.timestamp')),
                      IFNULL(json_extract(e.body, '$.timestamp'), '')),
               json_extract(e.body, '$.reason'), json_extract(e.body, '$.exit_code')
        FROM events e JOIN sessions s ON s.session_id = e.session_id
        WHERE e.event_type IN ('run_completed', 'session_stop');
    UPDATE sessions SET
        num_runs = (SELECT count(*) FROM runs r WHERE r.session_id = sessions.session_id),
        last_reason = (SELECT reason FROM runs r WHERE r.session_id = sessions.session_id ORDER BY id DESC LIMIT 1),
        last_exit_code = (SELECT exit_code FROM runs r WHERE r.session_id = sessions.session_id ORDER BY id DESC LIMIT 1),
        last_ended_at = (SELECT ended_at FROM runs r WHERE r.session_id = sessions.session_id ORDER BY id DESC LIMIT 1);
    DROP INDEX runs_session_once;",
    // 4: where a session runs (its git worktree and branch) and which
    // session started it.
    "ALTER TABLE sessions ADD COLUMN worktree TEXT;
    ALTER TABLE sessions ADD COLUMN branch TEXT;
    ALTER TABLE sessions ADD COLUMN parent_session_id TEXT;",
    // 5: requests a run waits on (a permission, a question), and how many
    // of each session's are pending. A request is `pending`, then
    // `answered` (a decision came through the API), then `closed` (the run
    // recorded its decision, or ended); `decision` is the last decision as
    // JSON. Its key is the CLI's request id within the session; rows are
    // listed in the order they came (rowid).
    "CREATE TABLE requests (
        session_id TEXT NOT NULL,
        request_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        tool_name TEXT NOT NULL,
        input TEXT NOT NULL,
        suggestions TEXT,
        tool_use_id TEXT,
        blocked_path TEXT,
        created_at TEXT NOT NULL,
        status TEXT NOT NULL,
        decision TEXT,
        PRIMARY KEY (session_id, request_id)
    );
    CREATE INDEX requests_open ON requests (session_id, status);
    ALTER TABLE sessions ADD COLUMN pending_requests INTEGER NOT NULL DEFAULT 0;",
    // 6: runs launched through the API (`launches`, served as /runs; the
    // `runs` table stays the accounting of run ends), the hosts that run
    // them, and the host each session lives on. Claims are compare-and-set
    // updates of one launch row, so a run is started once however many
    // hosts or replicas ask.
    "CREATE TABLE hosts (
        name TEXT PRIMARY KEY,
        instance TEXT NOT NULL,
        labels TEXT NOT NULL,
        projects TEXT NOT NULL,
        capacity INTEGER NOT NULL,
        claude_version TEXT,
        embedded INTEGER NOT NULL DEFAULT 0,
        online INTEGER NOT NULL,
        last_seen TEXT NOT NULL
    );
    CREATE TABLE launches (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL UNIQUE,
        session_name TEXT NOT NULL,
        project_dir TEXT,
        resume INTEGER NOT NULL,
        prompt TEXT NOT NULL,
        agent TEXT,
        worktree INTEGER NOT NULL,
        base TEXT,
        settings TEXT,
        want_host TEXT,
        labels TEXT NOT NULL,
        host TEXT,
        claimed_by TEXT,
        status TEXT NOT NULL,
        session_id TEXT,
        error TEXT,
        runner_exit_code INTEGER,
        created_at TEXT NOT NULL,
        started_at TEXT,
        ended_at TEXT
    );
    CREATE INDEX launches_open ON launches (status, seq) WHERE status IN ('queued', 'starting', 'running');
    CREATE INDEX launches_host ON launches (host, status);
    CREATE INDEX launches_name ON launches (session_name, seq);
    ALTER TABLE sessions ADD COLUMN host TEXT;",
    // 7: full-text search over prompts, answers, narration and tool input
    // (`GET /search`), with the events already stored indexed now.
    concat!(
        "CREATE VIRTUAL TABLE event_text USING fts5(text, tokenize = 'unicode61 remove_diacritics 2');
        CREATE TABLE search_state (id INTEGER PRIMARY KEY CHECK (id = 1), indexed_up_to INTEGER NOT NULL);
        INSERT INTO search_state (id, indexed_up_to) VALUES (1, 0);",
        index_new!()
    ),
    // 8: orchestration (#22): the session a fork copies, a tree's budget,
    // and the callbacks children owe their parents. A callback is
    // `waiting` while the child's run goes on, `pending` once it ended
    // (with its status and result), `delivering` once a resume of the
    // parent carries it (`run_id`: that launch), then `delivered`, or
    // `failed` with `error`. `seq` orders them as the children ended. A
    // resume that never started puts them back to `pending` until
    // `retry_at` (`attempts` so far), a few times, then fails them.
    "ALTER TABLE sessions ADD COLUMN forked_from TEXT;
    ALTER TABLE sessions ADD COLUMN budget_usd REAL;
    CREATE INDEX sessions_parent ON sessions (parent_session_id) WHERE parent_session_id IS NOT NULL;
    CREATE TABLE callbacks (
        child_run_id TEXT PRIMARY KEY,
        child_name TEXT NOT NULL,
        child_session_id TEXT,
        parent_session_id TEXT NOT NULL,
        status TEXT NOT NULL,
        child_status TEXT,
        result TEXT,
        seq INTEGER,
        run_id TEXT,
        error TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        retry_at TEXT,
        created_at TEXT NOT NULL,
        ended_at TEXT
    );
    CREATE INDEX callbacks_parent ON callbacks (parent_session_id, status);
    CREATE INDEX callbacks_run ON callbacks (run_id) WHERE run_id IS NOT NULL;",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The file's schema version, if it is a session manager's database.
pub(super) fn version_of(conn: &Connection) -> Result<i64, StoreError> {
    let app_id: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    if app_id != APPLICATION_ID {
        return Err(StoreError::Incompatible(
            "this file is not a session-manager database".to_owned(),
        ));
    }
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Brings the file up to `SCHEMA_VERSION`, or refuses it. Runs in one
/// immediate transaction, so two servers starting on one new file at once
/// cannot both migrate it.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let app_id: i64 = tx.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let has_tables: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table')",
        [],
        |r| r.get(0),
    )?;
    if app_id != APPLICATION_ID && (app_id != 0 || has_tables) {
        return Err(StoreError::Incompatible(
            "this file is not a session-manager database".to_owned(),
        ));
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::Incompatible(format!(
            "the database has schema version {version}, newer than this build's {SCHEMA_VERSION}; upgrade ao-session-manager"
        )));
    }
    for sql in MIGRATIONS.iter().skip(version as usize) {
        tx.execute_batch(sql)?;
    }
    if version < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_a_new_file_and_is_idempotent() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }

    #[test]
    fn migrates_a_version_1_file_forward() {
        let mut conn = Connection::open_in_memory().unwrap();
        let tx = conn.transaction().unwrap();
        tx.execute_batch(MIGRATIONS[0]).unwrap();
        tx.pragma_update(None, "user_version", 1).unwrap();
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        tx.commit().unwrap();
        conn.execute(
            "INSERT INTO sessions (session_id, session_name, status, created_at) VALUES ('s', 'n', 'finished', 't')",
            [],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let kept: i64 = conn
            .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, 1, "data survives the migration");
    }

    #[test]
    fn refuses_a_newer_schema() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = migrate(&mut conn).unwrap_err().to_string();
        assert!(err.contains("newer"), "{err}");
    }

    #[test]
    fn refuses_a_foreign_database() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x)").unwrap();
        let err = migrate(&mut conn).unwrap_err().to_string();
        assert!(err.contains("not a session-manager database"), "{err}");
    }
}
