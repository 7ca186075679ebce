//! The storage limit: the benchmark's event rows written straight into
//! SQLite, through the server's own connection settings, schema, write
//! transaction and insert statement (`server::bench_support`), with no HTTP,
//! no JSON parsing and no server in between.

use std::time::{Duration, Instant};

use agent_orchestrator::server::Synchronous;
use agent_orchestrator::server::bench_support::{
    begin_write, insert_event_row, open_store_connection,
};
use agent_orchestrator::wire::Event;

use crate::events::tool_event;

/// Events per second stored with `rows_per_commit` rows in each commit,
/// timing only the database work (building the rows is not counted).
pub fn events_per_second(sync: Synchronous, rows_per_commit: usize, time: Duration) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut conn = open_store_connection(&dir.path().join("storage.db"), sync)
        .expect("open the database as the server does");
    let session = "bench-storage";
    let wall_limit = Instant::now() + time * 3;
    let mut spent = Duration::ZERO;
    let mut stored = 0u64;
    while spent < time && Instant::now() < wall_limit {
        let rows = make_rows(session, stored, rows_per_commit);
        let start = Instant::now();
        let tx = begin_write(&mut conn).expect("begin");
        for (event, body) in &rows {
            insert_event_row(&tx, event, body)
                .expect("insert")
                .expect("a new event_id");
        }
        tx.commit().expect("commit");
        spent += start.elapsed();
        stored += rows.len() as u64;
    }
    stored as f64 / spent.as_secs_f64()
}

/// Events and the JSON the server would store for them.
fn make_rows(session: &str, first: u64, n: usize) -> Vec<(Event, String)> {
    (first..first + n as u64)
        .map(|seq| {
            let value = tool_event(session, seq);
            let body = value.to_string();
            let event: Event = serde_json::from_value(value).expect("a valid event");
            (event, body)
        })
        .collect()
}
