//! Full-text search over what sessions said and did: prompts, answers,
//! narration and tool calls' input, indexed by SQLite's FTS5 in the table
//! `event_text`, whose rowid is the event's. One SQL expression says what
//! text an event contributes.
//!
//! Events are indexed after they are stored, in batches: `search_state`
//! remembers the last event indexed, and [`INDEX_NEW`] indexes those after
//! it, once a second while events arrive and before every search. Indexing
//! each event as it was stored took 40% of the rate of message ingest;
//! indexed in batches, the index costs ingest almost nothing and a search
//! still sees every event stored before it. The migration that made the
//! table indexed the events already stored the same way.

use rusqlite::{Connection, params};

use super::StoreError;
use crate::server::store::search_words::hit_from_row;
use crate::wire::SearchHit;

/// The text an event row `e` (`events` with its `body`) contributes to the
/// index, NULL for none: a message's text blocks, a tool call's name and
/// input (from its `pre_tool`: its `post_tool` repeats the input), each
/// cut at 64 Ki characters.
macro_rules! searchable_text {
    () => {
        "substr(CASE
            WHEN e.event_type = 'message' THEN
                CASE json_type(e.body, '$.content')
                    WHEN 'text' THEN json_extract(e.body, '$.content')
                    WHEN 'array' THEN (SELECT group_concat(json_extract(b.value, '$.text'), char(10))
                        FROM json_each(e.body, '$.content') b
                        WHERE b.type = 'object' AND json_extract(b.value, '$.type') = 'text'
                          AND json_type(b.value, '$.text') = 'text')
                END
            WHEN e.event_type = 'pre_tool' THEN
                IFNULL(json_extract(e.body, '$.tool_name'), '') || char(10) || IFNULL(json_extract(e.body, '$.tool_input'), '')
        END, 1, 65536)"
    };
}

pub(super) use searchable_text;

/// Indexes the events stored since the last time, and notes the last one.
macro_rules! index_new {
    () => {
        concat!(
            "INSERT INTO event_text (rowid, text)
                SELECT id, txt FROM (SELECT e.id AS id, ",
            searchable_text!(),
            " AS txt FROM events e
                    WHERE e.id > (SELECT indexed_up_to FROM search_state WHERE id = 1)
                      AND e.event_type IN ('message', 'pre_tool'))
                WHERE txt IS NOT NULL AND txt <> '';
            UPDATE search_state SET indexed_up_to = (SELECT IFNULL(max(id), 0) FROM events) WHERE id = 1;"
        )
    };
}
pub(super) use index_new;

/// [`index_new!`] as a constant.
pub const INDEX_NEW: &str = index_new!();

/// Indexes the events stored since the last time.
pub(super) fn index_new_events(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(INDEX_NEW)?;
    Ok(())
}

/// Takes a session's events out of the index (before they are deleted).
pub(super) fn unindex_session(conn: &Connection, session_id: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "DELETE FROM event_text WHERE rowid IN (SELECT id FROM events WHERE session_id = ?1)",
    )?
    .execute([session_id])?;
    Ok(())
}

/// The FTS5 query for what a person typed (`store::search_words`): its
/// words quoted, the last one a prefix. `None` when there is no word in it.
pub(super) fn fts_query(text: &str) -> Option<String> {
    let words = crate::server::store::words(text);
    let (last, rest) = words.split_last()?;
    let mut query: Vec<String> = rest.iter().map(|w| format!("\"{w}\"")).collect();
    query.push(format!("\"{last}\"*"));
    Some(query.join(" "))
}

/// The best `limit` hits for `query` (an FTS5 query), in one project or all.
pub(super) fn search(
    conn: &Connection,
    query: &str,
    project: Option<&str>,
    limit: u32,
) -> Result<Vec<SearchHit>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.id, e.session_id, s.session_name, json_extract(e.body, '$.event_id'), e.event_type,
                e.role, json_extract(e.body, '$.final'), json_extract(e.body, '$.timestamp'),
                snippet(event_text, 0, char(2), char(3), '…', 24)
         FROM event_text JOIN events e ON e.id = event_text.rowid
              JOIN sessions s ON s.session_id = e.session_id
         WHERE event_text MATCH ?1 AND (?2 IS NULL OR IFNULL(s.project_dir, '') = ?2)
         ORDER BY rank LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![query, project, limit], |r| hit_from_row(r))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_is_words_all_of_them_the_last_a_prefix() {
        assert_eq!(fts_query("hello wor").as_deref(), Some(r#""hello" "wor"*"#));
        assert_eq!(
            fts_query(r#"a "quoted" OR-NOT (x)*"#).as_deref(),
            Some(r#""a" "quoted" "OR" "NOT" "x"*"#)
        );
        assert_eq!(fts_query("  -- ** "), None);
        assert_eq!(fts_query("échec").as_deref(), Some(r#""échec"*"#));
    }
}
