//! The fan-out point: the store publishes each change once into a backlog
//! that every live client reads at its own pace. The backlog is bounded
//! both in messages and in bytes, whatever the size of each message: the
//! oldest frames go first, and a client that had not read them yet is sent
//! `resync` with the count it missed. Publishing never waits for a client.
//!
//! A client filtered by session counts as missed only the dropped frames
//! about its own sessions: traffic about others, which it would never have
//! been sent, is no reason to resync it.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Frame;
use crate::server::changes::{Change, Publish};

/// How far behind a live client may fall before it is sent `resync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Messages kept, at most.
    pub messages: usize,
    /// Bytes of messages kept, at most (the newest message is always kept).
    pub bytes: usize,
}

/// The fan-out point: the store publishes, every live client subscribes.
#[derive(Clone)]
pub struct Hub {
    shared: Arc<Shared>,
}

struct Shared {
    /// Read by every client at once; written by publishers and by clients
    /// that come and go.
    backlog: RwLock<Backlog>,
    /// Wakes the clients waiting for a frame.
    published: Notify,
    /// Clients connected: with none, nothing is encoded or kept.
    clients: AtomicUsize,
    /// Frames published so far that change a session.
    session_changes: AtomicU64,
    budget: Budget,
}

/// The frames kept, oldest first, numbered from `first`.
#[derive(Default)]
struct Backlog {
    frames: VecDeque<Frame>,
    first: u64,
    bytes: usize,
    /// The sessions filtered clients follow.
    followed: HashMap<String, Followed>,
}

/// A session followed by filtered clients.
#[derive(Default)]
struct Followed {
    clients: usize,
    runners: usize,
    /// Frames about it that entered and left the backlog since it is
    /// followed (those kept at that moment count as entered).
    pushed: u64,
    dropped: u64,
}

impl Backlog {
    fn end(&self) -> u64 {
        self.first + self.frames.len() as u64
    }

    /// Adds `frame` and drops the oldest past the budget; answers them, to
    /// be freed outside the lock.
    fn push(&mut self, frame: Frame, budget: Budget) -> Vec<Frame> {
        if let Some(followed) = frame.session().and_then(|id| self.followed.get_mut(id)) {
            followed.pushed += 1;
        }
        self.bytes += frame.size();
        self.frames.push_back(frame);
        let mut dropped = Vec::new();
        while self.frames.len() > 1
            && (self.frames.len() > budget.messages || self.bytes > budget.bytes)
        {
            let Some(frame) = self.frames.pop_front() else {
                break;
            };
            self.first += 1;
            self.bytes -= frame.size();
            if let Some(followed) = frame.session().and_then(|id| self.followed.get_mut(id)) {
                followed.dropped += 1;
            }
            dropped.push(frame);
        }
        dropped
    }

    /// Drops every frame (no client is left to read them).
    fn clear(&mut self) -> VecDeque<Frame> {
        self.first = self.end();
        self.bytes = 0;
        std::mem::take(&mut self.frames)
    }

    /// Starts following `id`; answers how many frames about it entered the
    /// backlog so far, in the count [`Followed::dropped`] is compared to.
    fn follow(&mut self, id: &str, runner: bool) -> u64 {
        let frames = &self.frames;
        let followed = self
            .followed
            .entry(id.to_owned())
            .or_insert_with(|| Followed {
                pushed: frames.iter().filter(|f| f.session() == Some(id)).count() as u64,
                ..Followed::default()
            });
        followed.clients += 1;
        followed.runners += usize::from(runner);
        followed.pushed
    }

    fn unfollow(&mut self, id: &str, runner: bool) {
        if let Entry::Occupied(mut entry) = self.followed.entry(id.to_owned()) {
            let followed = entry.get_mut();
            followed.clients -= 1;
            followed.runners -= usize::from(runner);
            if followed.clients == 0 {
                entry.remove();
            }
        }
    }
}

impl Hub {
    pub fn new(budget: Budget) -> Self {
        let budget = Budget {
            messages: budget.messages.max(1),
            bytes: budget.bytes.max(1),
        };
        Hub {
            shared: Arc::new(Shared {
                backlog: RwLock::default(),
                published: Notify::new(),
                clients: AtomicUsize::new(0),
                session_changes: AtomicU64::new(0),
                budget,
            }),
        }
    }

    /// Whether a runner follows `session_id`'s feed now: a stop request
    /// reaches a run only through one.
    pub fn has_runner(&self, session_id: &str) -> bool {
        self.shared
            .backlog()
            .followed
            .get(session_id)
            .is_some_and(|f| f.runners > 0)
    }

    /// Sends a frame to every connected client (none connected is fine):
    /// one nothing stores (a message being written).
    pub(crate) fn publish(&self, frame: Frame) {
        self.shared.push(frame);
    }

    /// How many session changes were published so far.
    pub fn session_changes(&self) -> u64 {
        self.shared.session_changes.load(Ordering::SeqCst)
    }

    /// A client of every frame published from now on.
    pub(crate) fn subscribe(&self) -> Receiver {
        self.receiver(None)
    }

    /// A client of the frames about `sessions` only (`runner`: it runs them,
    /// so stop requests reach them through it).
    pub(crate) fn follow(&self, sessions: HashSet<String>, runner: bool) -> Receiver {
        self.receiver(Some((sessions, runner)))
    }

    fn receiver(&self, only: Option<(HashSet<String>, bool)>) -> Receiver {
        // Counted before the position is taken: a change committed after
        // this is published, and one before is in the snapshot read after.
        self.shared.clients.fetch_add(1, Ordering::SeqCst);
        let mut backlog = self.shared.backlog_mut();
        let only = only.map(|(sessions, runner)| Following {
            seen: sessions
                .into_iter()
                .map(|id| {
                    let pushed = backlog.follow(&id, runner);
                    (id, pushed)
                })
                .collect(),
            runner,
        });
        Receiver {
            shared: Arc::clone(&self.shared),
            next: backlog.end(),
            only,
        }
    }
}

impl Publish for Hub {
    /// Publishes a change: counted first if it changes a session, encoded
    /// and kept only if a live client is connected.
    fn publish_change(&self, change: &Change) {
        if change.changes_sessions() {
            self.shared.session_changes.fetch_add(1, Ordering::SeqCst);
        }
        if self.shared.clients.load(Ordering::SeqCst) > 0 {
            self.shared.push(Frame::of(change));
        }
    }
}

impl Shared {
    // Every update leaves the backlog consistent before it can panic, so a
    // poisoned lock is used as it is.
    fn backlog(&self) -> RwLockReadGuard<'_, Backlog> {
        self.backlog.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn backlog_mut(&self) -> RwLockWriteGuard<'_, Backlog> {
        self.backlog.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, frame: Frame) {
        let dropped = {
            let mut backlog = self.backlog_mut();
            if self.clients.load(Ordering::SeqCst) == 0 {
                return;
            }
            backlog.push(frame, self.budget)
        };
        self.published.notify_waiters();
        drop(dropped);
    }
}

/// What a filtered client follows.
struct Following {
    /// For each session followed, the frames about it before the client's
    /// position, counted as [`Backlog::follow`] answers.
    seen: HashMap<String, u64>,
    runner: bool,
}

impl Following {
    /// Whether the client gets `frame`; counts it if so.
    fn take(&mut self, frame: &Frame) -> bool {
        let Some(id) = frame.session() else {
            return true;
        };
        match self.seen.get_mut(id) {
            Some(seen) => {
                *seen += 1;
                true
            }
            None => false,
        }
    }

    /// The client's position jumps to the oldest frame kept: every frame
    /// before it was dropped, so those about its sessions that it had not
    /// seen are the ones it missed.
    fn catch_up(&mut self, followed: &HashMap<String, Followed>) -> u64 {
        let mut missed = 0;
        for (id, seen) in &mut self.seen {
            if let Some(f) = followed.get(id) {
                missed += f.dropped.saturating_sub(*seen);
                *seen = (*seen).max(f.dropped);
            }
        }
        missed
    }
}

/// One live client's place in the backlog.
pub struct Receiver {
    shared: Arc<Shared>,
    /// The number of the next frame to read.
    next: u64,
    only: Option<Following>,
}

impl Receiver {
    /// The next frame for this client, waiting for one; `None` at shutdown.
    pub(crate) async fn recv(&mut self, shutdown: &CancellationToken) -> Option<Frame> {
        loop {
            let shared = Arc::clone(&self.shared);
            let published = shared.published.notified();
            tokio::pin!(published);
            // Registered before looking, so that a frame published in
            // between still wakes it.
            published.as_mut().enable();
            if let Some(frame) = self.try_recv() {
                return Some(frame);
            }
            tokio::select! {
                () = shutdown.cancelled() => return None,
                () = published => {}
            }
        }
    }

    /// A frame already waiting for this client, if any: `resync` first when
    /// frames it had not read were dropped.
    pub(crate) fn try_recv(&mut self) -> Option<Frame> {
        let backlog = self.shared.backlog();
        if self.next < backlog.first {
            let missed = match &mut self.only {
                None => backlog.first - self.next,
                Some(only) => only.catch_up(&backlog.followed),
            };
            self.next = backlog.first;
            if missed > 0 {
                return Some(Frame::resync(missed));
            }
        }
        while self.next < backlog.end() {
            let frame = &backlog.frames[(self.next - backlog.first) as usize];
            self.next += 1;
            if self.only.as_mut().is_none_or(|only| only.take(frame)) {
                return Some(frame.clone());
            }
        }
        None
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let cleared = {
            let mut backlog = self.shared.backlog_mut();
            if let Some(only) = &self.only {
                for id in only.seen.keys() {
                    backlog.unfollow(id, only.runner);
                }
            }
            if self.shared.clients.fetch_sub(1, Ordering::SeqCst) == 1 {
                backlog.clear()
            } else {
                VecDeque::new()
            }
        };
        drop(cleared);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(session: &str, n: usize, bytes: usize) -> Frame {
        Frame::event(
            session,
            &format!(r#"{{"n":{n},"x":"{}"}}"#, "x".repeat(bytes)),
        )
    }

    fn hub(messages: usize, bytes: usize) -> Hub {
        Hub::new(Budget { messages, bytes })
    }

    /// `n` of each frame the receiver has waiting; a resync as minus its
    /// missed count.
    fn drain(rx: &mut Receiver) -> Vec<i64> {
        let mut out = Vec::new();
        while let Some(frame) = rx.try_recv() {
            let v: serde_json::Value = serde_json::from_str(frame.text().as_str()).unwrap();
            match v["type"].as_str().unwrap() {
                "resync" => out.push(-v["missed"].as_i64().unwrap()),
                _ => out.push(v["data"]["n"].as_i64().unwrap()),
            }
        }
        out
    }

    #[test]
    fn the_backlog_is_bounded_in_bytes_and_a_late_client_is_told_what_it_missed() {
        let hub = hub(4096, 100_000);
        let mut late = hub.subscribe();
        let mut keeping_up = hub.subscribe();
        for n in 0..50 {
            hub.publish(event("s", n, 10_000));
            assert_eq!(drain(&mut keeping_up), [n as i64]);
        }
        let backlog = hub.shared.backlog();
        assert!(backlog.bytes <= 100_000, "{}", backlog.bytes);
        assert!(backlog.frames.len() < 10);
        let kept = backlog.frames.len() as i64;
        drop(backlog);
        let mut expected = vec![-(50 - kept)];
        expected.extend(50 - kept..50);
        assert_eq!(drain(&mut late), expected);
    }

    #[test]
    fn the_backlog_is_bounded_in_messages_too() {
        let hub = hub(3, usize::MAX);
        let mut rx = hub.subscribe();
        for n in 0..10 {
            hub.publish(event("s", n, 1));
        }
        assert_eq!(drain(&mut rx), [-7, 7, 8, 9]);
    }

    #[test]
    fn a_frame_larger_than_the_budget_still_reaches_a_client_that_keeps_up() {
        let hub = hub(4096, 1_000);
        let mut rx = hub.subscribe();
        hub.publish(event("s", 1, 5_000));
        assert_eq!(drain(&mut rx), [1]);
        hub.publish(event("s", 2, 5_000));
        hub.publish(event("s", 3, 5_000));
        assert_eq!(drain(&mut rx), [-1, 3]);
    }

    #[test]
    fn nothing_is_kept_without_clients() {
        let hub = hub(4096, 1 << 20);
        hub.publish(event("s", 1, 100));
        assert!(hub.shared.backlog().frames.is_empty());
        let rx = hub.subscribe();
        hub.publish(event("s", 2, 100));
        assert_eq!(hub.shared.backlog().frames.len(), 1);
        drop(rx);
        assert!(
            hub.shared.backlog().frames.is_empty(),
            "freed with the last client"
        );
        let mut rx = hub.subscribe();
        hub.publish(event("s", 3, 100));
        assert_eq!(drain(&mut rx), [3], "numbering goes on");
    }

    #[test]
    fn a_filtered_client_misses_only_what_concerns_it() {
        let hub = hub(4, usize::MAX);
        let sessions: HashSet<String> = ["a".to_owned()].into();
        let mut rx = hub.follow(sessions.clone(), false);
        hub.publish(event("a", 1, 1));
        assert_eq!(drain(&mut rx), [1]);
        // Others' traffic pushes everything out: nothing of `a` is lost.
        for n in 0..10 {
            hub.publish(event("b", 100 + n, 1));
        }
        hub.publish(event("a", 2, 1));
        assert_eq!(drain(&mut rx), [2]);
        // Two of `a` unread, then others' traffic: two missed, not twelve.
        hub.publish(event("a", 3, 1));
        hub.publish(event("a", 4, 1));
        for n in 0..10 {
            hub.publish(event("b", 200 + n, 1));
        }
        hub.publish(event("a", 5, 1));
        assert_eq!(drain(&mut rx), [-2, 5]);
        // A client that starts following later counts from where it began,
        // though frames of `a` from before were still kept then.
        hub.publish(event("a", 6, 1));
        let mut second = hub.follow(sessions, true);
        assert!(hub.has_runner("a") && !hub.has_runner("b"));
        for n in 0..4 {
            hub.publish(event("b", 300 + n, 1));
        }
        assert_eq!(drain(&mut second), Vec::<i64>::new());
        assert_eq!(drain(&mut rx), [-1], "6 was dropped unread");
        drop(second);
        assert!(!hub.has_runner("a"));
    }
}
