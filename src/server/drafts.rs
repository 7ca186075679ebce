//! The text so far of the message each session's model is writing, built
//! from the `text_delta`s its runner forwards, so that a page that opens in
//! the middle of a message starts from it. Memory only, bounded: a draft
//! stops growing at [`MAX_DRAFT`] bytes, and at most [`MAX_SESSIONS`]
//! sessions have one. A session's draft goes when the message's event is
//! stored (the runner sends both through one ordered queue) or its run ends,
//! on whichever replica of a shared database they were posted to.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::wire::{Draft, Event, Role, TextDelta};

/// The most text kept per session, in bytes.
pub const MAX_DRAFT: usize = 256 * 1024;
/// Sessions with a draft at once, at most.
pub const MAX_SESSIONS: usize = 4096;

#[derive(Default)]
pub struct Drafts {
    drafts: Mutex<HashMap<String, Draft>>,
}

impl Drafts {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Draft>> {
        self.drafts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a delta to the session's draft, or starts a new draft when it
    /// belongs to another block.
    pub fn add(&self, session_id: &str, delta: &TextDelta) {
        let mut drafts = self.lock();
        if let Some(draft) = drafts.get_mut(session_id)
            && draft.message_id == delta.message_id
            && draft.index == delta.index
        {
            draft.seq = delta.seq;
            if draft.text.len() + delta.text.len() > MAX_DRAFT {
                draft.truncated = true;
            } else if !draft.truncated {
                draft.text.push_str(&delta.text);
            }
            return;
        }
        if drafts.len() >= MAX_SESSIONS
            && !drafts.contains_key(session_id)
            && let Some(other) = drafts.keys().next().cloned()
        {
            drafts.remove(&other);
        }
        let mut text = delta.text.clone();
        let truncated = text.len() > MAX_DRAFT;
        if truncated {
            text.clear();
        }
        drafts.insert(
            session_id.to_owned(),
            Draft {
                message_id: delta.message_id.clone(),
                index: delta.index,
                seq: delta.seq,
                text,
                truncated,
            },
        );
    }

    /// The session's draft, if a message is being written.
    pub fn get(&self, session_id: &str) -> Option<Draft> {
        let drafts = self.lock();
        drafts.get(session_id).cloned()
    }

    /// Forgets the session's draft: its message was stored, or its run ended.
    pub fn clear(&self, session_id: &str) {
        let mut drafts = self.lock();
        drafts.remove(session_id);
    }

    /// Forgets the session's draft if the stored event `body` (posted to
    /// another replica) ends it; read only while a draft is kept.
    pub fn end_with_stored(&self, session_id: &str, body: &str) {
        let kept = self.lock().contains_key(session_id);
        if kept && serde_json::from_str::<Event>(body).is_ok_and(|e| ends(&e)) {
            self.clear(session_id);
        }
    }
}

/// Whether `event` ends the message being written: its event is stored, or
/// the run ended.
pub fn ends(event: &Event) -> bool {
    event.role == Some(Role::Assistant) || event.event_type.status_effect().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(index: u64, seq: u64, text: &str) -> TextDelta {
        TextDelta {
            text: text.to_owned(),
            message_id: Some("m".into()),
            index: Some(index),
            seq,
        }
    }

    #[test]
    fn deltas_of_one_block_add_up_and_another_block_starts_afresh() {
        let drafts = Drafts::default();
        drafts.add("s", &delta(0, 1, "Hel"));
        drafts.add("s", &delta(0, 2, "lo"));
        let draft = drafts.get("s").unwrap();
        assert_eq!((draft.text.as_str(), draft.seq), ("Hello", 2));
        drafts.add("s", &delta(1, 1, "Next"));
        assert_eq!(drafts.get("s").unwrap().text, "Next");
        drafts.clear("s");
        assert!(drafts.get("s").is_none());
    }

    #[test]
    fn a_draft_stops_growing_at_its_bound() {
        let drafts = Drafts::default();
        drafts.add("s", &delta(0, 1, &"x".repeat(MAX_DRAFT - 1)));
        drafts.add("s", &delta(0, 2, "yy"));
        drafts.add("s", &delta(0, 3, "z"));
        let draft = drafts.get("s").unwrap();
        assert!(draft.truncated && draft.text.len() == MAX_DRAFT - 1);
        assert_eq!(draft.seq, 3);
    }
}
