//! Callbacks on PostgreSQL (the rules are `store::callback_rules`). Every
//! step is one writer's transaction, as on SQLite; what several replicas
//! could do at once is kept single: a replica takes a parent's pending
//! callbacks with `FOR UPDATE SKIP LOCKED` before it queues the resume that
//! carries them (another replica skips them, then sees them `delivering`),
//! and `seq` comes from a sequence.

use super::reader::get_session;
use super::{Db, exec, launches, row, rows};
use crate::server::changes::Change;
use crate::server::store::StoreError;
use crate::server::store::callback_rules::{self, Retry, callback_from_row};
use crate::wire::{Callback, CallbackCreate, Event, SessionStatus, now_rfc3339};

/// `SELECT <every callback column> FROM callbacks <rest>`.
macro_rules! select_callbacks {
    ($rest:literal) => {
        concat!(
            "SELECT child_run_id, child_name, child_session_id, parent_session_id,
                status, child_status, result, run_id, error, created_at, ended_at FROM callbacks ",
            $rest
        )
    };
}

async fn get(db: &impl Db, child_run_id: &str) -> Result<Option<Callback>, StoreError> {
    row(
        db,
        select_callbacks!("WHERE child_run_id = $1"),
        &[&child_run_id],
    )
    .await?
    .as_ref()
    .map(callback_from_row)
    .transpose()
}

/// `POST /callbacks`.
pub(super) async fn register(db: &impl Db, c: &CallbackCreate) -> Result<Callback, StoreError> {
    if get_session(db, &c.parent_session_id).await?.is_none() {
        return Err(callback_rules::no_parent(&c.parent_session_id));
    }
    exec(
        db,
        "INSERT INTO callbacks (child_run_id, child_name, parent_session_id, status, created_at)
         VALUES ($1, $2, $3, 'waiting', $4) ON CONFLICT (child_run_id) DO NOTHING",
        &[
            &c.child_run_id,
            &c.child_session_name,
            &c.parent_session_id,
            &now_rfc3339(),
        ],
    )
    .await?;
    get(db, &c.child_run_id)
        .await?
        .ok_or_else(|| StoreError::Unavailable("the new callback vanished".to_owned()))
}

/// The callbacks owed to `parent` that are not delivered yet, in the order
/// the children ended (those still running last).
pub(super) async fn owed_to(db: &impl Db, parent: &str) -> Result<Vec<Callback>, StoreError> {
    rows(
        db,
        select_callbacks!(
            "WHERE parent_session_id = $1 AND status <> 'delivered'
             ORDER BY seq NULLS LAST, created_at COLLATE \"C\""
        ),
        &[&parent],
    )
    .await?
    .iter()
    .map(callback_from_row)
    .collect()
}

/// A stored run end: the child's callback becomes pending (with how the
/// run ended and its answer), and a parent's resume that carried
/// callbacks has delivered them.
pub(super) async fn on_run_end(db: &impl Db, event: &Event) -> Result<(), StoreError> {
    let Some(run_id) = &event.run_id else {
        return Ok(());
    };
    exec(
        db,
        "UPDATE callbacks SET status = 'delivered' WHERE run_id = $1 AND status = 'delivering'",
        &[run_id],
    )
    .await?;
    let waiting = row(
        db,
        "SELECT 1 FROM callbacks WHERE child_run_id = $1 AND status = 'waiting' FOR UPDATE",
        &[run_id],
    )
    .await?
    .is_some();
    if !waiting {
        return Ok(());
    }
    let (status, result) = match callback_rules::ending(event) {
        (status, Some(error)) => (status, error),
        (status, None) => (status, answer_of(db, &event.session_id, run_id).await?),
    };
    exec(
        db,
        "UPDATE callbacks SET status = 'pending', child_session_id = $1, child_status = $2,
             result = $3, seq = nextval('callbacks_ended'), ended_at = $4
         WHERE child_run_id = $5 AND status = 'waiting'",
        &[&event.session_id, &status, &result, &now_rfc3339(), run_id],
    )
    .await?;
    Ok(())
}

/// The last answer of run `run_id` of `session_id`.
async fn answer_of(db: &impl Db, session_id: &str, run_id: &str) -> Result<String, StoreError> {
    let body: Option<String> = row(
        db,
        "SELECT body FROM events WHERE session_id = $1 AND event_type = 'message'
         AND role = 'assistant' AND body::jsonb ->> 'run_id' = $2
         ORDER BY id DESC LIMIT 1",
        &[&session_id, &run_id],
    )
    .await?
    .map(|r| r.try_get(0))
    .transpose()?;
    Ok(callback_rules::answer_text(body))
}

/// Resumes every parent that has pending callbacks and is not running,
/// with all of them at once; fails those whose parent is gone. Answers
/// how many parents were resumed.
pub(super) async fn deliver(db: &impl Db, changes: &mut Vec<Change>) -> Result<usize, StoreError> {
    retry_unstarted(db).await?;
    let now = now_rfc3339();
    let parents: Vec<String> = rows(
        db,
        "SELECT DISTINCT parent_session_id FROM callbacks WHERE status = 'pending'
         AND parent_session_id NOT IN (SELECT parent_session_id FROM callbacks
             WHERE status = 'pending' AND retry_at > $1)",
        &[&now],
    )
    .await?
    .iter()
    .map(|r| r.try_get(0))
    .collect::<Result<_, _>>()?;
    let mut resumed = 0;
    for parent in parents {
        // Taken here, or skipped: another replica is delivering them.
        let taken = rows(
            db,
            "SELECT child_run_id FROM callbacks WHERE parent_session_id = $1 AND status = 'pending'
             FOR UPDATE SKIP LOCKED",
            &[&parent],
        )
        .await?;
        if taken.is_empty() {
            continue;
        }
        let busy = row(
            db,
            "SELECT 1 FROM callbacks WHERE parent_session_id = $1 AND status = 'delivering' LIMIT 1",
            &[&parent],
        )
        .await?
        .is_some();
        if busy {
            continue;
        }
        let Some(session) = get_session(db, &parent).await? else {
            fail_all(db, &parent, "the parent session was deleted").await?;
            continue;
        };
        if session.status == SessionStatus::Running {
            continue;
        }
        let due: Vec<Callback> = owed_to(db, &parent)
            .await?
            .into_iter()
            .filter(|c| c.status == "pending")
            .collect();
        let create = callback_rules::resume(&session, &due);
        let run_id = uuid::Uuid::new_v4().to_string();
        exec(db, "SAVEPOINT resume", &[]).await?;
        match launches::create(db, &create, &run_id, changes).await {
            Ok(_) => {
                exec(db, "RELEASE SAVEPOINT resume", &[]).await?;
                exec(
                    db,
                    "UPDATE callbacks SET status = 'delivering', run_id = $1
                     WHERE parent_session_id = $2 AND status = 'pending'",
                    &[&run_id, &parent],
                )
                .await?;
                resumed += 1;
            }
            Err(e) => {
                if super::ops::fails_batch(&e) {
                    return Err(e);
                }
                exec(db, "ROLLBACK TO SAVEPOINT resume", &[]).await?;
                exec(db, "RELEASE SAVEPOINT resume", &[]).await?;
                match e {
                    // Its run or its host is busy or away: tried again on the next change.
                    StoreError::Conflict(why) => tracing::debug!(
                        "callbacks for session '{}' wait: {why}",
                        session.session_name
                    ),
                    StoreError::NotFound(why) | StoreError::Invalid(why) => {
                        fail_all(db, &parent, &why).await?;
                    }
                    e => return Err(e),
                }
            }
        }
    }
    Ok(resumed)
}

/// A resume that never started delivered nothing: its callbacks are
/// pending again after a pause, or fail (`callback_rules::retry`).
async fn retry_unstarted(db: &impl Db) -> Result<(), StoreError> {
    let unstarted = rows(
        db,
        "SELECT c.child_run_id, c.child_name, c.attempts, l.error FROM callbacks c
         JOIN launches l ON l.run_id = c.run_id
         WHERE c.status = 'delivering' AND l.status IN ('failed_to_start', 'stopped')
             AND l.session_id IS NULL
         FOR UPDATE OF c SKIP LOCKED",
        &[],
    )
    .await?;
    for r in unstarted {
        let child_run_id: String = r.try_get(0)?;
        let child: String = r.try_get(1)?;
        let attempts: i64 = r.try_get::<_, i64>(2)? + 1;
        let error: Option<String> = r.try_get(3)?;
        let (why, retry) = callback_rules::retry(&child, attempts, error.as_deref());
        let (status, retry_at) = match retry {
            Retry::At(at) => ("pending", Some(at)),
            Retry::Fail => ("failed", None),
        };
        exec(
            db,
            "UPDATE callbacks SET status = $1, attempts = $2, retry_at = COALESCE($3, retry_at),
                 error = $4 WHERE child_run_id = $5",
            &[&status, &attempts, &retry_at, &why, &child_run_id],
        )
        .await?;
    }
    Ok(())
}

/// `POST /callbacks/{child_run_id}/end`: a child's run that ended before
/// its CLI named the conversation still calls back, with its error.
pub(super) async fn end(
    db: &impl Db,
    child_run_id: &str,
    error: &str,
) -> Result<Callback, StoreError> {
    exec(
        db,
        "UPDATE callbacks SET status = 'pending', child_status = 'error', result = $1,
             seq = nextval('callbacks_ended'), ended_at = $2
         WHERE child_run_id = $3 AND status = 'waiting'",
        &[&error, &now_rfc3339(), &child_run_id],
    )
    .await?;
    get(db, child_run_id)
        .await?
        .ok_or_else(|| callback_rules::no_callback(child_run_id))
}

async fn fail_all(db: &impl Db, parent: &str, why: &str) -> Result<(), StoreError> {
    let names: Vec<String> = rows(
        db,
        "UPDATE callbacks SET status = 'failed', error = $1
         WHERE parent_session_id = $2 AND status = 'pending' RETURNING child_name",
        &[&why, &parent],
    )
    .await?
    .iter()
    .map(|r| r.try_get(0))
    .collect::<Result<_, _>>()?;
    callback_rules::log_failed(&names, parent, why);
    Ok(())
}
