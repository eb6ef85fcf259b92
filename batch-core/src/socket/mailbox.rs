//! What waits to be written to one WebSocket: a bounded queue that a slow reader
//! overflows instead of holding memory or other sockets back.
//!
//! Two bounds, because two kinds of message wait. Live messages (answers and
//! changes as they happen) are bounded by `max_queued`: a reader that many behind
//! is not keeping up. A replay (the events a resume missed, queued at once) is
//! bounded apart, by what the history can hold for the socket's subscriptions
//! (`history_events` × `max_subscriptions`): a replay the history holds is always
//! delivered, whatever `max_queued`, while a client resuming again and again
//! without reading is still closed once its replays pass that. A queued replay
//! event shares its text with the history (`Bytes`), so a frame waiting costs a
//! few dozen bytes.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::sync::Notify;

use super::frame::{Frame, close_code};
use super::session::{Outbox, Outgoing};
use crate::changes::Event;
use crate::config::SocketConfig;

/// The messages of one socket waiting to be written, and whether the socket is
/// closing.
pub(crate) struct Mailbox {
    state: Mutex<State>,
    changed: Notify,
    limit: usize,
    replay_limit: usize,
}

#[derive(Default)]
struct State {
    /// Frames to write, in order, each with whether it is part of a replay.
    queue: VecDeque<(Frame, bool)>,
    /// How many frames of `queue` are part of a replay.
    replaying: usize,
    /// Frames the protocol calls for (pings, pongs), written before the queue.
    control: VecDeque<Frame>,
    /// Why the socket closes, once it does; nothing more is queued then.
    close: Option<(u16, &'static str)>,
}

/// What the writer does next.
pub(crate) enum Next {
    /// Writes this frame.
    Frame(Frame),
    /// Writes the close frame and stops.
    Close(u16, &'static str),
}

impl Mailbox {
    /// A mailbox holding at most `limit` live messages and, besides them,
    /// `replay_limit` replayed events.
    pub(crate) fn new(limit: usize, replay_limit: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            limit,
            replay_limit,
        }
    }

    /// A mailbox with the bounds of `config`: `max_queued` live messages, and the
    /// longest replays the history can hold for as many subscriptions as a socket
    /// may have.
    pub(crate) fn for_config(config: &SocketConfig) -> Self {
        Self::new(
            config.max_queued(),
            config
                .history_events()
                .saturating_mul(config.max_subscriptions()),
        )
    }

    /// Closes the socket with `code`: what was queued is dropped and nothing more is
    /// taken. The first reason given is the one sent.
    pub(crate) fn close(&self, code: u16, reason: &'static str) {
        let mut state = self.lock();
        if state.close.is_none() {
            state.close = Some((code, reason));
            state.queue.clear();
            state.replaying = 0;
        }
        drop(state);
        self.changed.notify_waiters();
    }

    /// The close code, once the socket is closing.
    pub(crate) fn closing(&self) -> Option<u16> {
        self.lock().close.map(|(code, _)| code)
    }

    /// Owes the client `frame` (a ping or a pong), ahead of the queued messages. One
    /// of each kind waits at most, the latest: a client pinging faster than it
    /// reads holds no memory (RFC 6455 §5.5.3 lets a pong answer only the latest
    /// ping).
    pub(crate) fn control(&self, frame: Frame) {
        let mut state = self.lock();
        let kind = std::mem::discriminant(&frame);
        state
            .control
            .retain(|waiting| std::mem::discriminant(waiting) != kind);
        state.control.push_back(frame);
        drop(state);
        self.changed.notify_waiters();
    }

    /// The next frame to write, waiting for one.
    pub(crate) async fn next(&self) -> Next {
        loop {
            // Registered before the state is looked at, so no change is missed.
            let notified = self.changed.notified();
            let mut notified = pin!(notified);
            notified.as_mut().enable();
            if let Some(next) = self.take() {
                return next;
            }
            notified.await;
        }
    }

    /// The next frame to write, if one is waiting.
    pub(crate) fn take(&self) -> Option<Next> {
        let mut state = self.lock();
        if let Some(frame) = state.control.pop_front() {
            return Some(Next::Frame(frame));
        }
        if let Some((code, reason)) = state.close {
            return Some(Next::Close(code, reason));
        }
        let (frame, replayed) = state.queue.pop_front()?;
        if replayed {
            state.replaying -= 1;
        }
        Some(Next::Frame(frame))
    }

    /// Resolves once the socket is closing.
    pub(crate) async fn closed(&self) -> u16 {
        loop {
            let notified = self.changed.notified();
            let mut notified = pin!(notified);
            notified.as_mut().enable();
            if let Some(code) = self.closing() {
                return code;
            }
            notified.await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Outbox for Mailbox {
    fn send(&self, message: Outgoing<'_>) {
        let text = match message {
            Outgoing::Answer(answer) => answer.json(),
            Outgoing::Event(event) => event.json().clone(),
        };
        self.push(text);
    }

    fn replay(&self, events: &[Event]) {
        self.push_replay(events.iter().map(|event| event.json().clone()));
    }
}

impl Mailbox {
    /// Queues `text` as one live message, unless the socket is closing; a reader
    /// `limit` live messages behind is closed with 1013 instead.
    pub(crate) fn push(&self, text: Bytes) {
        let mut state = self.lock();
        if state.close.is_some() {
            return;
        }
        if state.queue.len() - state.replaying >= self.limit {
            // A reader this far behind is closed rather than waited for.
            Self::overflow(&mut state);
        } else {
            state.queue.push_back((Frame::Text(text), false));
        }
        drop(state);
        self.changed.notify_waiters();
    }

    /// Queues each of `texts` as one message of a replay, in order, unless the
    /// socket is closing; they count against `replay_limit`, not against the live
    /// `limit`, and a replay that would pass it closes the socket with 1013.
    pub(crate) fn push_replay(&self, texts: impl ExactSizeIterator<Item = Bytes>) {
        let mut state = self.lock();
        if state.close.is_some() || texts.len() == 0 {
            return;
        }
        if state.replaying + texts.len() > self.replay_limit {
            Self::overflow(&mut state);
        } else {
            state.replaying += texts.len();
            state
                .queue
                .extend(texts.map(|text| (Frame::Text(text), true)));
        }
        drop(state);
        self.changed.notify_waiters();
    }

    fn overflow(state: &mut State) {
        state.close = Some((close_code::TRY_AGAIN_LATER, "too far behind"));
        state.queue.clear();
        state.replaying = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(next: Next) -> Option<Frame> {
        match next {
            Next::Frame(frame) => Some(frame),
            Next::Close(..) => None,
        }
    }

    #[tokio::test]
    async fn messages_come_out_in_order_with_pongs_first() {
        let mailbox = Mailbox::new(4, 4);
        let event = Event::delete("/a".into());
        mailbox.send(Outgoing::Event(&event));
        mailbox.control(Frame::Pong(Bytes::from_static(b"p")));
        assert_eq!(
            frame(mailbox.next().await),
            Some(Frame::Pong(Bytes::from_static(b"p")))
        );
        assert_eq!(
            frame(mailbox.next().await),
            Some(Frame::Text(event.json().clone()))
        );
    }

    #[tokio::test]
    async fn a_replay_counts_apart_from_live_messages() {
        let mailbox = Mailbox::new(2, 5);
        let events: Vec<Event> = (0..5).map(|i| Event::delete(format!("/a/{i}"))).collect();
        mailbox.replay(&events);
        mailbox.send(Outgoing::Event(&events[0]));
        mailbox.send(Outgoing::Event(&events[1]));
        assert_eq!(mailbox.closing(), None, "five replayed and two live fit");
        for event in events.iter().chain(&events[..2]) {
            assert_eq!(
                frame(mailbox.next().await),
                Some(Frame::Text(event.json().clone()))
            );
        }
        mailbox.replay(&events);
        mailbox.replay(&events[..1]);
        assert_eq!(
            mailbox.closing(),
            Some(close_code::TRY_AGAIN_LATER),
            "replays past their own limit close the socket"
        );
        assert!(mailbox.lock().queue.is_empty());
    }

    #[tokio::test]
    async fn a_client_pinging_without_reading_holds_one_pong() {
        let mailbox = Mailbox::new(4, 4);
        for i in 0..1000_u32 {
            mailbox.control(Frame::Pong(Bytes::from(i.to_be_bytes().to_vec())));
            mailbox.control(Frame::Ping(Bytes::new()));
        }
        assert_eq!(mailbox.lock().control.len(), 2);
        assert_eq!(
            frame(mailbox.next().await),
            Some(Frame::Pong(Bytes::from(999_u32.to_be_bytes().to_vec()))),
            "the pong answers the latest ping"
        );
        assert_eq!(frame(mailbox.next().await), Some(Frame::Ping(Bytes::new())));
    }

    #[tokio::test]
    async fn a_reader_too_far_behind_is_closed_and_holds_nothing() {
        let mailbox = Mailbox::new(2, 2);
        let event = Event::delete("/a".into());
        for _ in 0..3 {
            mailbox.send(Outgoing::Event(&event));
        }
        assert_eq!(mailbox.closing(), Some(close_code::TRY_AGAIN_LATER));
        assert!(mailbox.lock().queue.is_empty());
        mailbox.send(Outgoing::Event(&event));
        assert!(
            mailbox.lock().queue.is_empty(),
            "nothing is taken once closing"
        );
        assert!(matches!(mailbox.next().await, Next::Close(1013, _)));
        assert_eq!(mailbox.closed().await, 1013);
    }
}
