//! The recent events of each resource, so that a client whose socket dropped can
//! resume where it left off instead of reading the whole state again.
//!
//! Every event delivered through a replica's [`Subscribers`](super::Subscribers)
//! gets the next `seq` of that replica and is kept under its resource URI and its
//! list URI, until `max_events` newer events of that URI exist or it is older than
//! `max_age`. A cursor names the replica's run (`epoch`) and a position in its
//! order, and says nothing else: a cursor of another run or replica is not
//! covered, and the client gets a fresh state.
//!
//! A hub that keeps the history elsewhere (in Redis, shared by every replica) stamps
//! events itself; the history then only follows the cursor of the last one.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::event::Event;

/// The most events kept for all URIs together, whatever their age, so that a
/// burst of changes to many resources cannot hold unbounded memory.
const MAX_TOTAL: usize = 100_000;

/// How much history is kept per URI, for clients that resume: the socket settings'
/// `history_events` and `history_age`, which a [`Hub`](super::Hub) keeping its own
/// history reads from [`Subscribers::retention`](super::Subscribers::retention).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retention {
    /// An event is kept until this many newer events of its URI exist...
    pub max_events: usize,
    /// ...and at least until it is this old.
    pub max_age: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_events: 1000,
            max_age: Duration::from_secs(300),
        }
    }
}

/// What a hub's history holds after a client's cursor, for one URI: the answer to
/// [`Hub::since`](super::Hub::since).
#[derive(Debug)]
pub enum Since {
    /// Every event of the URI after the cursor, in order (maybe none), each stamped
    /// with its seq ([`Event::with_seq`]), none delivered by this replica later than
    /// the [`Subscribers::cursor`](super::Subscribers::cursor) read after the
    /// subscription was made.
    Missed {
        /// The seq the cursor names. A replica behind the one the client left may
        /// deliver events up to it after the subscription was made; the client has
        /// them, and they are not sent again.
        after: u64,
        /// The events after it.
        events: Vec<Event>,
    },
    /// The cursor is malformed, of another run, or older than what is kept: the
    /// client gets a fresh state.
    NotCovered,
}

#[derive(Debug)]
pub(crate) struct History {
    epoch: String,
    last: u64,
    retention: Retention,
    by_key: HashMap<String, Kept>,
    /// Every kept event, oldest first, with when it was recorded.
    by_age: VecDeque<(Instant, Event)>,
    /// The newest seq forgotten for age or for [`MAX_TOTAL`]: every URI's history
    /// starts after it.
    forgotten: u64,
    /// The cursor of the last event a hub stamped itself, when that came after the
    /// last one recorded here.
    followed: Option<String>,
}

#[derive(Debug, Default)]
struct Kept {
    events: VecDeque<Event>,
    /// The newest seq of this URI dropped for `max_events`.
    dropped: u64,
}

impl Default for History {
    fn default() -> Self {
        // Cursors of an earlier run of the process must not read as this one's.
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        Self {
            epoch: format!("{started:x}"),
            last: 0,
            retention: Retention::default(),
            by_key: HashMap::new(),
            by_age: VecDeque::new(),
            forgotten: 0,
            followed: None,
        }
    }
}

impl History {
    pub(crate) fn retain(&mut self, retention: Retention) {
        self.retention = retention;
    }

    pub(crate) fn retention(&self) -> Retention {
        self.retention
    }

    /// The cursor of the last event delivered (of any URI).
    pub(crate) fn cursor(&self) -> String {
        match &self.followed {
            Some(cursor) => cursor.clone(),
            None => self.format(self.last),
        }
    }

    /// `cursor`, of an event a hub stamped itself, is the last one delivered.
    pub(crate) fn follow(&mut self, cursor: &str) {
        self.followed = Some(cursor.to_owned());
    }

    fn format(&self, seq: u64) -> String {
        format!("{}-{seq}", self.epoch)
    }

    /// The position `cursor` names in this run's order, if it is one of its cursors.
    fn parse(&self, cursor: &str) -> Option<u64> {
        let (epoch, seq) = cursor.split_once('-')?;
        let seq = seq.parse().ok()?;
        (epoch == self.epoch && seq <= self.last).then_some(seq)
    }

    /// Stamps `event` with the next seq, keeps it, and forgets what is beyond the
    /// retention; the stamped event is the one to deliver.
    pub(crate) fn record(&mut self, event: &Event, now: Instant) -> Event {
        self.followed = None;
        self.last += 1;
        let stamped = event.with_seq(self.last, &self.format(self.last));
        let [uri, list] = stamped.keys();
        let keys: &[&str] = if uri == list { &[uri] } else { &[uri, list] };
        for key in keys {
            let kept = self.by_key.entry((*key).to_owned()).or_default();
            kept.events.push_back(stamped.clone());
            if kept.events.len() > self.retention.max_events
                && let Some(oldest) = kept.events.pop_front()
            {
                kept.dropped = oldest.seq();
            }
        }
        self.by_age.push_back((now, stamped.clone()));
        while let Some((at, _)) = self.by_age.front() {
            let expired = now.saturating_duration_since(*at) > self.retention.max_age;
            if !expired && self.by_age.len() <= MAX_TOTAL {
                break;
            }
            if let Some((_, oldest)) = self.by_age.pop_front() {
                self.forget(&oldest);
            }
        }
        stamped
    }

    fn forget(&mut self, event: &Event) {
        self.forgotten = event.seq();
        for key in event.keys() {
            if let Some(kept) = self.by_key.get_mut(key) {
                if kept.events.front().is_some_and(|e| e.seq() == event.seq()) {
                    kept.events.pop_front();
                }
                if kept.events.is_empty() {
                    self.by_key.remove(key);
                }
            }
        }
    }

    /// The events of `key` after `cursor`, when all of them are still kept.
    pub(crate) fn since(&self, key: &str, cursor: Option<&str>) -> Since {
        let Some(after) = cursor.and_then(|cursor| self.parse(cursor)) else {
            return Since::NotCovered;
        };
        let kept = self.by_key.get(key);
        let floor = kept.map_or(self.forgotten, |kept| kept.dropped.max(self.forgotten));
        if after < floor {
            return Since::NotCovered;
        }
        let events = kept.map_or_else(Vec::new, |kept| {
            kept.events
                .iter()
                .filter(|event| event.seq() > after)
                .cloned()
                .collect()
        });
        Since::Missed { after, events }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(since: Since) -> Option<Vec<u64>> {
        match since {
            Since::Missed { events, .. } => Some(events.iter().map(Event::seq).collect()),
            Since::NotCovered => None,
        }
    }

    #[test]
    fn a_cursor_is_covered_while_every_later_event_of_its_uri_is_kept() {
        let mut history = History::default();
        history.retain(Retention {
            max_events: 2,
            max_age: Duration::from_secs(60),
        });
        let start = Instant::now();
        let before = history.cursor();
        let first = history.record(&Event::delete("/items/1".into()), start);
        history.record(&Event::delete("/items/2".into()), start);
        history.record(&Event::delete("/items/1".into()), start);
        // Two kept for /items/1 and every event before them known: covered.
        assert_eq!(
            seqs(history.since("/items/1", Some(&before))),
            Some(vec![1, 3])
        );
        // The list URI holds both resources' events; only the last two are kept.
        assert_eq!(seqs(history.since("/items/", Some(&before))), None);
        let cursor = history.format(first.seq());
        assert_eq!(
            seqs(history.since("/items/", Some(&cursor))),
            Some(vec![2, 3])
        );
        assert_eq!(seqs(history.since("/items/9", Some(&before))), Some(vec![]));
        for bad in ["", "x", "1", "0-0", &format!("{}-99", history.epoch)] {
            assert_eq!(seqs(history.since("/items/1", Some(bad))), None, "{bad}");
        }
        assert_eq!(seqs(history.since("/items/1", None)), None);
        // Once older than max_age, events are forgotten and so are cursors before them.
        history.record(
            &Event::delete("/items/3".into()),
            start + Duration::from_secs(61),
        );
        assert_eq!(seqs(history.since("/items/1", Some(&before))), None);
        assert!(!history.by_key.contains_key("/items/1"));
        let now = history.format(3);
        assert_eq!(seqs(history.since("/items/1", Some(&now))), Some(vec![]));
    }
}
