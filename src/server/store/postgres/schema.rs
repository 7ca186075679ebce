//! The database layout on PostgreSQL and its migrations, numbered as
//! SQLite's (`sqlite/schema.rs`): migration N means the same on both, so a
//! database of either engine at version N holds the same things. The
//! version is the one row of `ao_schema`; a newer one than this build's is
//! refused, as is a database that holds tables of something else.
//!
//! Types mirror SQLite's: times are RFC 3339 text (text order is time
//! order), counts BIGINT, costs DOUBLE PRECISION, event bodies the JSON
//! text as sent. A migration added to SQLite's list must be added here
//! with the same number (a test compares the two lists' lengths).

use tokio_postgres::Client;

use super::super::StoreError;

/// Each entry moves the schema from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: sessions and events.
    "CREATE TABLE sessions (
        seq BIGSERIAL PRIMARY KEY,
        session_id TEXT NOT NULL UNIQUE,
        session_name TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        project_dir TEXT,
        agent_name TEXT,
        last_resumed_at TEXT
    );
    CREATE UNIQUE INDEX sessions_name_project ON sessions (session_name, COALESCE(project_dir, ''));
    CREATE TABLE events (
        id BIGSERIAL PRIMARY KEY,
        session_id TEXT NOT NULL,
        event_id TEXT,
        event_type TEXT NOT NULL,
        role TEXT,
        body TEXT NOT NULL
    );
    CREATE INDEX events_session ON events (session_id, id);
    CREATE UNIQUE INDEX events_event_id ON events (session_id, event_id) WHERE event_id IS NOT NULL;",
    // 2: the sessions of one project, newest first.
    "CREATE INDEX sessions_project ON sessions (COALESCE(project_dir, ''), seq);",
    // 3: what runs cost: one `runs` row per run end (its id is its event's),
    // and each session's totals. (No PostgreSQL database predates it, so
    // there are no older runs to fill in.)
    "ALTER TABLE sessions
        ADD COLUMN num_runs BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN cost_usd DOUBLE PRECISION,
        ADD COLUMN input_tokens BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN output_tokens BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN cache_creation_input_tokens BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN cache_read_input_tokens BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN last_reason TEXT,
        ADD COLUMN last_exit_code BIGINT,
        ADD COLUMN last_duration_ms BIGINT,
        ADD COLUMN last_ended_at TEXT;
    CREATE TABLE runs (
        id BIGINT PRIMARY KEY,
        session_id TEXT NOT NULL,
        project_dir TEXT,
        agent_name TEXT,
        ended_at TEXT NOT NULL,
        reason TEXT,
        exit_code BIGINT,
        cost_usd DOUBLE PRECISION,
        input_tokens BIGINT,
        output_tokens BIGINT,
        cache_creation_input_tokens BIGINT,
        cache_read_input_tokens BIGINT,
        num_turns BIGINT,
        duration_ms BIGINT,
        duration_api_ms BIGINT
    );",
    // 4: where a session runs (its git worktree and branch) and which
    // session started it. On PostgreSQL also the replicas, each with its
    // last heartbeat, and the sessions whose runners follow their feed on
    // each (a single SQLite process needs neither).
    "ALTER TABLE sessions
        ADD COLUMN worktree TEXT,
        ADD COLUMN branch TEXT,
        ADD COLUMN parent_session_id TEXT;
    CREATE TABLE replicas (
        replica_id TEXT PRIMARY KEY,
        seen_at TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE runner_feeds (
        replica_id TEXT NOT NULL,
        session_id TEXT NOT NULL,
        PRIMARY KEY (session_id, replica_id)
    );",
    // 5: requests a run waits on, and each session's pending count (as
    // SQLite's; `seq` orders them as SQLite's rowid does).
    "CREATE TABLE requests (
        seq BIGSERIAL,
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
    CREATE INDEX requests_open ON requests (session_id, status, seq);
    ALTER TABLE sessions ADD COLUMN pending_requests BIGINT NOT NULL DEFAULT 0;",
    // 6: launched runs, the hosts that run them, each session's host (as
    // SQLite's). A run is given to a host under `FOR UPDATE SKIP LOCKED`
    // and claimed by a compare-and-set of its row, so however many
    // replicas dispatch, none starts twice.
    "CREATE TABLE hosts (
        name TEXT PRIMARY KEY,
        instance TEXT NOT NULL,
        labels TEXT NOT NULL,
        projects TEXT NOT NULL,
        capacity BIGINT NOT NULL,
        claude_version TEXT,
        embedded BOOLEAN NOT NULL DEFAULT FALSE,
        online BOOLEAN NOT NULL,
        last_seen TEXT NOT NULL
    );
    CREATE TABLE launches (
        seq BIGSERIAL PRIMARY KEY,
        run_id TEXT NOT NULL UNIQUE,
        session_name TEXT NOT NULL,
        project_dir TEXT,
        resume BOOLEAN NOT NULL,
        prompt TEXT NOT NULL,
        agent TEXT,
        worktree BOOLEAN NOT NULL,
        base TEXT,
        settings TEXT,
        want_host TEXT,
        labels TEXT NOT NULL,
        host TEXT,
        claimed_by TEXT,
        status TEXT NOT NULL,
        session_id TEXT,
        error TEXT,
        runner_exit_code BIGINT,
        created_at TEXT NOT NULL,
        started_at TEXT,
        ended_at TEXT
    );
    CREATE INDEX launches_open ON launches (status, seq) WHERE status IN ('queued', 'starting', 'running');
    CREATE INDEX launches_host ON launches (host, status);
    CREATE INDEX launches_name ON launches (session_name, seq);
    ALTER TABLE sessions ADD COLUMN host TEXT;",
    // 7: full-text search (`GET /search`). Where SQLite keeps an FTS5
    // table indexed in batches, each event row here carries its words as
    // a generated tsvector (GIN-indexed): always in step with the rows,
    // however many replicas write them. `ao_event_text` says what text an
    // event contributes, as SQLite's `searchable_text!` does; words are
    // runs of letters and digits, lowercased (config `simple`). It is
    // PL/pgSQL, whose plans a connection keeps: as a SQL function with a
    // sub-select it was parsed and planned again by every INSERT, and the
    // writer's statement for 32 events took three times as long.
    r#"CREATE FUNCTION ao_event_text(event_type TEXT, body TEXT) RETURNS TEXT
        LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $f$
    DECLARE
        j jsonb;
    BEGIN
        IF event_type = 'pre_tool' THEN
            j := body::jsonb;
            RETURN substr(COALESCE(j ->> 'tool_name', '') || E'\n' || COALESCE(j ->> 'tool_input', ''),
                1, 65536);
        ELSIF event_type = 'message' THEN
            j := body::jsonb;
            RETURN substr(CASE jsonb_typeof(j -> 'content')
                WHEN 'string' THEN j ->> 'content'
                WHEN 'array' THEN (SELECT string_agg(b ->> 'text', E'\n' ORDER BY n)
                    FROM jsonb_array_elements(j -> 'content') WITH ORDINALITY AS x(b, n)
                    WHERE jsonb_typeof(b) = 'object' AND b ->> 'type' = 'text'
                      AND jsonb_typeof(b -> 'text') = 'string')
            END, 1, 65536);
        END IF;
        RETURN NULL;
    END
    $f$;
    ALTER TABLE events ADD COLUMN words tsvector GENERATED ALWAYS AS (
        to_tsvector('simple'::regconfig,
            regexp_replace(COALESCE(ao_event_text(event_type, body), ''), '[^[:alnum:]]+', ' ', 'g'))
    ) STORED;
    CREATE INDEX events_words ON events USING GIN (words);"#,
    // 8: orchestration (#22), as SQLite's: the session a fork copies, a
    // tree's budget, and the callbacks children owe their parents
    // (`store::callback_rules` says what each status means). A replica
    // takes a parent's pending callbacks under `FOR UPDATE SKIP LOCKED`,
    // so that however many replicas deliver, each resume starts once.
    "ALTER TABLE sessions ADD COLUMN forked_from TEXT;
    ALTER TABLE sessions ADD COLUMN budget_usd DOUBLE PRECISION;
    CREATE INDEX sessions_parent ON sessions (parent_session_id) WHERE parent_session_id IS NOT NULL;
    CREATE TABLE callbacks (
        child_run_id TEXT PRIMARY KEY,
        child_name TEXT NOT NULL,
        child_session_id TEXT,
        parent_session_id TEXT NOT NULL,
        status TEXT NOT NULL,
        child_status TEXT,
        result TEXT,
        seq BIGINT,
        run_id TEXT,
        error TEXT,
        attempts BIGINT NOT NULL DEFAULT 0,
        retry_at TEXT,
        created_at TEXT NOT NULL,
        ended_at TEXT
    );
    CREATE SEQUENCE callbacks_ended;
    CREATE INDEX callbacks_parent ON callbacks (parent_session_id, status);
    CREATE INDEX callbacks_run ON callbacks (run_id) WHERE run_id IS NOT NULL;",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Serializes migrations of replicas starting at once ("AOSM").
const MIGRATION_LOCK: i64 = 0x414F_534D;

/// Brings the database up to `SCHEMA_VERSION`, or refuses it, in one
/// transaction under an advisory lock.
pub(super) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let ours: bool = tx
        .query_one("SELECT to_regclass('ao_schema') IS NOT NULL", &[])
        .await?
        .get(0);
    let version: i64 = if ours {
        tx.query_one("SELECT version FROM ao_schema", &[])
            .await?
            .get(0)
    } else {
        let tables: i64 = tx
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()",
                &[],
            )
            .await?
            .get(0);
        if tables > 0 {
            return Err(StoreError::Incompatible(
                "this database holds tables of something else, not of a session manager; \
                 give the session manager a database of its own (createdb)"
                    .to_owned(),
            ));
        }
        tx.batch_execute(
            "CREATE TABLE ao_schema (version BIGINT NOT NULL); INSERT INTO ao_schema VALUES (0)",
        )
        .await?;
        0
    };
    if version > SCHEMA_VERSION {
        return Err(StoreError::Incompatible(format!(
            "the database has schema version {version}, newer than this build's {SCHEMA_VERSION}; upgrade ao-session-manager"
        )));
    }
    for sql in MIGRATIONS.iter().skip(version as usize) {
        tx.batch_execute(sql).await?;
    }
    if version < SCHEMA_VERSION {
        tx.execute("UPDATE ao_schema SET version = $1", &[&SCHEMA_VERSION])
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
