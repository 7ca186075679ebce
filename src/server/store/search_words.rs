//! What a person typed into search, as both engines read it: its words
//! (runs of letters and digits), every one of which must appear, the last
//! one as the start of a word (so that results come while typing); and a
//! hit as both engines' rows read.

use super::row::StoredRow;
use crate::wire::SearchHit;

/// Hits answered at most.
pub const MAX_HITS: u32 = 100;

/// A hit as its row is read (`SELECT id, session_id, session_name,
/// event_id, event_type, role, final, timestamp, snippet`).
pub(super) fn hit_from_row<R: StoredRow>(r: &R) -> Result<SearchHit, R::Error> {
    Ok(SearchHit {
        id: r.column(0)?,
        session_id: r.column(1)?,
        session_name: r.column(2)?,
        event_id: r.column(3)?,
        event_type: r.column(4)?,
        role: r.column(5)?,
        is_final: r.column(6)?,
        timestamp: r.column(7)?,
        snippet: r.column(8)?,
    })
}

/// The words of `text`; none when it holds no letter or digit.
pub fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::words;

    #[test]
    fn words_are_runs_of_letters_and_digits() {
        assert_eq!(words("hello wor"), ["hello", "wor"]);
        assert_eq!(
            words(r#"a "quoted" OR-NOT (x)*"#),
            ["a", "quoted", "OR", "NOT", "x"]
        );
        assert!(words("  -- ** ").is_empty());
        assert_eq!(words("out.txt échec"), ["out", "txt", "échec"]);
    }
}
