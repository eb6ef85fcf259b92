//! What waits to be written to one WebSocket: a bounded queue that a slow reader
//! overflows instead of holding memory or other sockets back.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::sync::Notify;

use super::frame::{Frame, close_code};
use super::session::{Outbox, Outgoing};

/// The messages of one socket waiting to be written, and whether the socket is
/// closing.
pub(crate) struct Mailbox {
    state: Mutex<State>,
    changed: Notify,
    limit: usize,
}

#[derive(Default)]
struct State {
    /// Frames to write, in order.
    queue: VecDeque<Frame>,
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
    /// A mailbox holding at most `limit` messages.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            limit,
        }
    }

    /// Closes the socket with `code`: what was queued is dropped and nothing more is
    /// taken. The first reason given is the one sent.
    pub(crate) fn close(&self, code: u16, reason: &'static str) {
        let mut state = self.lock();
        if state.close.is_none() {
            state.close = Some((code, reason));
            state.queue.clear();
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
        state.queue.pop_front().map(Next::Frame)
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
}

impl Mailbox {
    /// Queues `text` as one message, unless the socket is closing; a reader
    /// `limit` messages behind is closed with 1013 instead.
    pub(crate) fn push(&self, text: Bytes) {
        let mut state = self.lock();
        if state.close.is_some() {
            return;
        }
        if state.queue.len() >= self.limit {
            // A reader this far behind is closed rather than waited for.
            state.close = Some((close_code::TRY_AGAIN_LATER, "too far behind"));
            state.queue.clear();
        } else {
            state.queue.push_back(Frame::Text(text));
        }
        drop(state);
        self.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::Event;

    fn frame(next: Next) -> Option<Frame> {
        match next {
            Next::Frame(frame) => Some(frame),
            Next::Close(..) => None,
        }
    }

    #[tokio::test]
    async fn messages_come_out_in_order_with_pongs_first() {
        let mailbox = Mailbox::new(4);
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
    async fn a_client_pinging_without_reading_holds_one_pong() {
        let mailbox = Mailbox::new(4);
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
        let mailbox = Mailbox::new(2);
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
