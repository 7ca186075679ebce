//! Text as the model writes it: the `text_delta`s of the CLI's stream
//! events (`--include-partial-messages`), joined so that a session sends at
//! most ten a second. What is still waiting when the block's assistant line
//! arrives is dropped: that line's event carries the whole text.

use std::time::Duration;

use tokio::time::Instant;

use crate::claude::protocol::StreamEventLine;
use crate::wire::TextDelta;

/// The shortest time between two deltas of one session.
pub const MIN_GAP: Duration = Duration::from_millis(100);

/// Joins the text deltas of the block being written.
#[derive(Debug, Default)]
pub struct Streamer {
    message_id: Option<String>,
    index: Option<u64>,
    /// Deltas sent for this block.
    seq: u64,
    /// Text read and not sent yet.
    pending: String,
    last_sent: Option<Instant>,
}

impl Streamer {
    /// Reads one stream event; answers a delta to send now, if one is due.
    pub fn read(&mut self, line: &StreamEventLine, now: Instant) -> Option<TextDelta> {
        if line.parent_tool_use_id.is_some() {
            return None;
        }
        if let Some(id) = line.message_id() {
            self.message_id = Some(id.to_owned());
            self.index = None;
            self.pending.clear();
        }
        let (index, text) = line.text_delta()?;
        if self.index != Some(index) {
            self.index = Some(index);
            self.seq = 0;
            self.pending.clear();
        }
        self.pending.push_str(text);
        let due = self.last_sent.is_none_or(|at| at + MIN_GAP <= now);
        if due { self.flush(now) } else { None }
    }

    /// When the waiting text may be sent; `None` when nothing waits.
    pub fn due(&self) -> Option<Instant> {
        if self.pending.is_empty() {
            return None;
        }
        Some(match self.last_sent {
            Some(at) => at + MIN_GAP,
            None => Instant::now(),
        })
    }

    /// The waiting text as a delta.
    pub fn flush(&mut self, now: Instant) -> Option<TextDelta> {
        if self.pending.is_empty() {
            return None;
        }
        self.seq += 1;
        self.last_sent = Some(now);
        Some(TextDelta {
            text: std::mem::take(&mut self.pending),
            message_id: self.message_id.clone(),
            index: self.index,
            seq: self.seq,
        })
    }

    /// The block's whole text has arrived (its assistant line): what waits
    /// is no longer worth sending.
    pub fn written(&mut self) {
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claude::protocol::{CliLine, parse_line};

    fn event(json: &str) -> StreamEventLine {
        match parse_line(json.as_bytes()) {
            Some((CliLine::StreamEvent(line), _)) => *line,
            other => panic!("{other:?}"),
        }
    }

    fn text(index: u64, t: &str) -> StreamEventLine {
        event(&format!(
            r#"{{"type":"stream_event","event":{{"type":"content_block_delta","index":{index},"delta":{{"type":"text_delta","text":"{t}"}}}}}}"#
        ))
    }

    #[test]
    fn deltas_are_joined_to_ten_a_second_and_numbered_per_block() {
        let mut s = Streamer::default();
        let t0 = Instant::now();
        let start = event(
            r#"{"type":"stream_event","event":{"type":"message_start","message":{"id":"m1"}}}"#,
        );
        assert_eq!(s.read(&start, t0), None);
        let first = s.read(&text(0, "Hel"), t0).expect("the first goes at once");
        assert_eq!(
            (
                first.text.as_str(),
                first.seq,
                first.message_id.as_deref(),
                first.index
            ),
            ("Hel", 1, Some("m1"), Some(0))
        );
        assert_eq!(s.read(&text(0, "lo"), t0 + Duration::from_millis(30)), None);
        assert_eq!(s.read(&text(0, ", "), t0 + Duration::from_millis(60)), None);
        assert_eq!(s.due(), Some(t0 + MIN_GAP));
        let joined = s.flush(t0 + MIN_GAP).unwrap();
        assert_eq!((joined.text.as_str(), joined.seq), ("lo, ", 2));
        // A new block counts from 1 again.
        let later = t0 + Duration::from_millis(250);
        let next = s.read(&text(1, "Next"), later).unwrap();
        assert_eq!((next.seq, next.index), (1, Some(1)));
        // Text its assistant line already carries is dropped.
        assert_eq!(s.read(&text(1, " bit"), later), None);
        s.written();
        assert_eq!(s.due(), None);
    }

    #[test]
    fn a_subagents_text_and_other_events_are_not_sent() {
        let mut s = Streamer::default();
        let sub = event(
            r#"{"type":"stream_event","parent_tool_use_id":"t","event":{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}}"#,
        );
        assert_eq!(s.read(&sub, Instant::now()), None);
        let json = event(
            r#"{"type":"stream_event","event":{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{"}}}"#,
        );
        assert_eq!(s.read(&json, Instant::now()), None);
        assert_eq!(s.due(), None);
    }
}
