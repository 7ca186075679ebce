//! Telling the session manager what the backups say: one planned
//! [`Action`] at a time, safe to repeat (a create that finds the session
//! there, or an event whose id is stored, counts as done).

use crate::client::{ClientError, SessionClient};
use crate::record::Action;
use crate::wire::SessionPatch;

/// What applying an action did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Added,
    AlreadyThere,
    /// A run end was there without its figures, and got them.
    Filled,
}

/// Applies one action.
pub async fn apply(client: &SessionClient, action: &Action) -> Result<Applied, ClientError> {
    match action {
        Action::Create(create) => match client.create_session(create).await {
            Ok(_) => Ok(Applied::Added),
            Err(ClientError::Api {
                status: 409,
                detail,
            }) => match client.get_session(&create.session_id).await {
                Ok(_) => Ok(Applied::AlreadyThere),
                Err(ClientError::NotFound(_)) => Err(ClientError::Api {
                    status: 409,
                    detail,
                }),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        },
        Action::Resume {
            session_id,
            at,
            create,
        } => {
            let patch = SessionPatch {
                last_resumed_at: Some(at.clone()),
                ..Default::default()
            };
            match client.update_session(session_id, &patch).await {
                Ok(_) => Ok(Applied::Added),
                Err(ClientError::NotFound(_)) => {
                    Box::pin(apply(client, &Action::Create(create.clone()))).await?;
                    client.update_session(session_id, &patch).await?;
                    Ok(Applied::Added)
                }
                Err(e) => Err(e),
            }
        }
        Action::Event(event) => {
            let answer = client.post_event(&event.session_id, event).await?;
            Ok(match (answer.duplicate, answer.filled) {
                (false, _) => Applied::Added,
                (true, true) => Applied::Filled,
                (true, false) => Applied::AlreadyThere,
            })
        }
    }
}

/// True for failures that may pass: no answer, a timeout, or a 5xx/408/429.
pub fn is_transient(err: &ClientError) -> bool {
    match err {
        ClientError::Unreachable { .. } => true,
        ClientError::Api { status, .. } => *status >= 500 || *status == 408 || *status == 429,
        _ => false,
    }
}
