//! From a session name to a session: the current project directory first
//! (two projects may both have an `architect`), then the backup files of
//! the current sessions directory, then, where the command allows it, any
//! project with exactly one session of that name. When the API cannot be
//! reached, the backups answer, after one warning line.

use crate::backup::{Meta, SessionFiles};
use crate::name::SessionName;
use crate::wire::Session;

use super::{CommandError, Ctx};

/// How far a name may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only the current project directory (what `ao-clean` may touch).
    Project,
    /// The current project first, then a unique match in any project.
    AnyProject,
}

/// A session found by name.
#[derive(Debug)]
pub enum Found {
    /// The API knows it. `files` is set when the current sessions directory
    /// holds this very session's backups (same session id), which is when
    /// its lock tells whether its runner is alive.
    Api {
        session: Session,
        files: Option<SessionFiles>,
    },
    /// Only the backups know it (the API is unreachable, or has no record).
    Backup {
        files: SessionFiles,
        meta: Option<Meta>,
    },
}

/// Finds `name`; `Ok(None)` when nobody knows it.
pub async fn find(
    ctx: &Ctx,
    name: &SessionName,
    scope: Scope,
) -> Result<Option<Found>, CommandError> {
    let files = ctx.files(name);
    match ctx
        .client
        .find_sessions(name.as_str(), Some(ctx.project()))
        .await
    {
        Ok(sessions) => {
            if let Some(session) = sessions.into_iter().next() {
                return Ok(Some(api(session, files)));
            }
        }
        Err(e) if e.is_unreachable() => {
            ctx.fall_back(&e);
            return backup(files);
        }
        Err(e) => return Err(e.into()),
    }
    if files.exist() {
        return backup(files);
    }
    if scope == Scope::Project {
        return Ok(None);
    }
    match in_any_project(ctx, name).await {
        Ok(session) => Ok(session.map(|s| api(s, files))),
        Err(CommandError::Client(e)) if e.is_unreachable() => {
            ctx.fall_back(&e);
            backup(files)
        }
        Err(e) => Err(e),
    }
}

/// The session the session manager knows by `name`: the current project's,
/// else the only one of that name in any project. What only the session
/// manager holds (requests and decisions) is looked up so, without falling
/// back to the backups.
pub async fn in_api(ctx: &Ctx, name: &SessionName) -> Result<Option<Session>, CommandError> {
    let here = ctx
        .client
        .find_sessions(name.as_str(), Some(ctx.project()))
        .await?;
    match here.into_iter().next() {
        Some(session) => Ok(Some(session)),
        None => in_any_project(ctx, name).await,
    }
}

/// The only session named `name` in any project, if there is one.
async fn in_any_project(ctx: &Ctx, name: &SessionName) -> Result<Option<Session>, CommandError> {
    let mut sessions = ctx.client.find_sessions(name.as_str(), None).await?;
    if sessions.len() > 1 {
        return Err(CommandError::Ambiguous {
            name: name.to_string(),
            project: ctx.project().to_owned(),
            dirs: sessions
                .drain(..)
                .map(|s| s.project_dir.unwrap_or_else(|| "(no project)".to_owned()))
                .collect(),
        });
    }
    Ok(sessions.into_iter().next())
}

/// Says, once, that the API has no record of a session only the backups
/// know (while the API answers), and how to send it: for the commands that
/// answer from those backups. A run under way may not have reached the API
/// yet: no warning then.
pub fn warn_if_unsynced(ctx: &Ctx, name: &SessionName, found: &Option<Found>) {
    let Some(Found::Backup {
        files,
        meta: Some(Meta {
            session_id: Some(id),
            ..
        }),
    }) = found
    else {
        return;
    };
    let running = matches!(files.lock_state(), Ok(crate::backup::LockState::Held(_)));
    if ctx.fell_back() || running {
        return;
    }
    ctx.diag.warn(format!(
        "the session manager has no record of session '{name}' ({id}); answering from the backup files (`ao-sync {name}` sends them)"
    ));
}

/// The error for a name nobody knows, naming the project's session with
/// the nearest name, if one is near.
pub async fn unknown(ctx: &Ctx, name: &SessionName) -> CommandError {
    CommandError::Unknown {
        name: name.to_string(),
        project: ctx.project().to_owned(),
        near: near(ctx, name).await,
    }
}

/// The project's session whose name is nearest to `name`, if one is near.
pub async fn near(ctx: &Ctx, name: &SessionName) -> Option<String> {
    crate::suggest::near_session(
        &ctx.client,
        ctx.project(),
        &ctx.config.sessions_dir.value,
        name.as_str(),
        !ctx.fell_back(),
    )
    .await
}

/// The API's session, with the local backups when they are this session's.
fn api(session: Session, files: SessionFiles) -> Found {
    // A meta file we cannot read just means the backups cannot vouch for
    // this session; the API's answer stands.
    let ours = files
        .read_meta()
        .ok()
        .flatten()
        .and_then(|m| m.session_id)
        .is_some_and(|id| id == session.session_id);
    Found::Api {
        session,
        files: ours.then_some(files),
    }
}

/// The backups of the session, if there are any.
fn backup(files: SessionFiles) -> Result<Option<Found>, CommandError> {
    if !files.exist() {
        return Ok(None);
    }
    let meta = files.read_meta()?;
    Ok(Some(Found::Backup { files, meta }))
}
