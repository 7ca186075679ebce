//! `GET /search` on PostgreSQL: the events whose generated `words`
//! (migration 7) hold every word typed, the last one as a prefix, best
//! first (`ts_rank`), each with a snippet marked as SQLite's is (the word
//! between `\u{2}` and `\u{3}`).

use super::{Db, rows};
use crate::server::store::search_words::hit_from_row;
use crate::server::store::{StoreError, words};
use crate::wire::SearchHit;

const SEARCH: &str = "SELECT e.id, e.session_id, s.session_name, e.body::jsonb ->> 'event_id', e.event_type,
        e.role, CASE jsonb_typeof(e.body::jsonb -> 'final') WHEN 'boolean' THEN (e.body::jsonb ->> 'final')::BOOLEAN END,
        e.body::jsonb ->> 'timestamp',
        ts_headline('simple', ao_event_text(e.event_type, e.body), q,
            'StartSel=' || chr(2) || ', StopSel=' || chr(3) || ', MaxWords=24, MinWords=12, ShortWord=0')
     FROM events e JOIN sessions s ON s.session_id = e.session_id,
          to_tsquery('simple', $1) AS q
     WHERE e.words @@ q AND ($2::TEXT IS NULL OR COALESCE(s.project_dir, '') = $2)
     ORDER BY ts_rank(e.words, q) DESC, e.id DESC LIMIT $3";

/// The tsquery for what a person typed: every word, the last a prefix.
fn ts_query(text: &str) -> Option<String> {
    let words: Vec<String> = words(text).iter().map(|w| w.to_lowercase()).collect();
    let (last, rest) = words.split_last()?;
    let mut query: Vec<String> = rest.to_vec();
    query.push(format!("{last}:*"));
    Some(query.join(" & "))
}

/// The best `limit` hits for `text`, in one project or all.
pub(super) async fn search(
    db: &impl Db,
    text: &str,
    project: Option<&str>,
    limit: u32,
) -> Result<Vec<SearchHit>, StoreError> {
    let Some(query) = ts_query(text) else {
        return Ok(Vec::new());
    };
    let limit = i64::from(limit);
    rows(db, SEARCH, &[&query, &project, &limit])
        .await?
        .iter()
        .map(hit_from_row)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::ts_query;

    #[test]
    fn a_query_is_every_word_the_last_a_prefix() {
        assert_eq!(ts_query("Hello wor").as_deref(), Some("hello & wor:*"));
        assert_eq!(
            ts_query(r#"a "quoted" OR-NOT (x)*"#).as_deref(),
            Some("a & quoted & or & not & x:*")
        );
        assert_eq!(ts_query("  -- ** "), None);
    }
}
