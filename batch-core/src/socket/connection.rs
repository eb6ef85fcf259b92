//! One WebSocket, from its first frame to its closing handshake: messages read and
//! run concurrently up to the limit, answers and changes written in order, pings,
//! and the closes the limits call for.

use std::pin::pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::{Sink, SinkExt, Stream, StreamExt};
use tokio::time::{Instant, MissedTickBehavior};

use super::frame::{CloseFrame, Frame, close_code};
use super::mailbox::{Mailbox, Next};
use super::message::ClientMessage;
use super::session::Session;
use crate::config::SocketConfig;
use crate::executor::Executor;

/// Serves `session` over one socket until it closes.
pub(crate) async fn serve<E, In, Out, InErr, OutErr>(
    session: Session<E>,
    mailbox: Arc<Mailbox>,
    config: &SocketConfig,
    incoming: In,
    outgoing: Out,
) where
    E: Executor,
    In: Stream<Item = Result<Frame, InErr>>,
    Out: Sink<Frame, Error = OutErr>,
{
    let mut reader = pin!(read(&session, &mailbox, config, incoming));
    let mut writer = pin!(write(&mailbox, outgoing));
    tokio::select! {
        () = &mut reader => {
            // The client closed: its close is answered before the socket goes.
            if mailbox.closing().is_some() {
                let _ = tokio::time::timeout(config.close_grace(), &mut writer).await;
            }
        }
        () = &mut writer => {
            // The close frame is written: the client's is awaited. A writer that
            // failed instead leaves nothing to wait for.
            if mailbox.closing().is_some() {
                reader.await;
            }
        }
    }
    // A client that left without a close frame gets none; its subscriptions end
    // with the session.
}

/// Reads frames and runs their messages, at most `max_in_flight` at once: while
/// that many run, no frame is read (back-pressure). Rechecks subscriptions as
/// their events call for, beside the messages. Pings every `ping_interval`,
/// and closes a socket not heard from for `idle_timeout`, even while its writes
/// wait. Once the socket is closing, runs nothing more, ends its subscriptions, and
/// reads and drops what the client still sends until its close frame arrives or
/// the grace period ends.
async fn read<E, In, InErr>(
    session: &Session<E>,
    mailbox: &Mailbox,
    config: &SocketConfig,
    incoming: In,
) where
    E: Executor,
    In: Stream<Item = Result<Frame, InErr>>,
{
    let mut incoming = pin!(incoming);
    let mut recheck = pin!(session.recheck());
    let mut running = FuturesUnordered::new();
    let mut heard = Instant::now();
    let mut ping = tokio::time::interval_at(heard + config.ping_interval(), config.ping_interval());
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let code = loop {
        tokio::select! {
            // Once the socket is closing, nothing more is read or started.
            biased;
            code = mailbox.closed() => break code,
            _ = ping.tick() => {
                if running.len() >= config.max_in_flight() {
                    // The server is the one not reading: the client is not idle.
                    heard = Instant::now();
                }
                if heard.elapsed() >= config.idle_timeout() {
                    mailbox.close(close_code::GOING_AWAY, "no pong");
                } else {
                    mailbox.control(Frame::Ping(Bytes::new()));
                }
            }
            () = &mut recheck => {}
            Some(_answered) = running.next(), if !running.is_empty() => {}
            frame = incoming.next(), if running.len() < config.max_in_flight() => {
                let Some(Ok(frame)) = frame else {
                    // The client went away.
                    return;
                };
                heard = Instant::now();
                match frame {
                    Frame::Text(data) | Frame::Binary(data) if data.len() > config.max_message() => {
                        mailbox.close(close_code::TOO_BIG, "message too large");
                    }
                    Frame::Text(text) => match ClientMessage::decode_shared(&text) {
                        Ok(message) => running.push(session.handle(message)),
                        Err(error) => {
                            session.refuse(error.reference().map(str::to_owned), error.detail());
                        }
                    },
                    Frame::Binary(_) => {
                        session.refuse(None, "a message is one JSON object in a text frame, not binary");
                    }
                    Frame::Ping(data) => mailbox.control(Frame::Pong(data)),
                    Frame::Pong(_) => {}
                    Frame::Close(frame) => {
                        let code = frame.map_or(close_code::NORMAL, |frame| frame.code);
                        // Answered in kind, and the exchange is over.
                        mailbox.close(echoable(code), "");
                        return;
                    }
                }
            }
        }
    };
    // Closing: ops still running are dropped, and the socket holds nothing more;
    // the client's data is read and dropped so that no reset destroys the close
    // frame on its way.
    drop(running);
    session.unsubscribe_all();
    let grace = if code == close_code::TRY_AGAIN_LATER {
        config.slow_reader_grace()
    } else {
        config.close_grace()
    };
    let _ = tokio::time::timeout(grace, async {
        while let Some(Ok(frame)) = incoming.next().await {
            if matches!(frame, Frame::Close(_)) {
                return;
            }
        }
    })
    .await;
}

/// Frames handed to the transport before it is flushed, at most: frames that wait
/// together go out in one write, yet a writer fed as fast as it writes still
/// flushes.
const FRAMES_PER_FLUSH: usize = 64;

/// Writes what the mailbox holds, in order: the frames waiting at once are handed
/// to the transport together and flushed once (one `write` for a burst of changes,
/// not one each). Returns once its close frame is written, or the transport failed.
async fn write<Out, OutErr>(mailbox: &Mailbox, outgoing: Out)
where
    Out: Sink<Frame, Error = OutErr>,
{
    let mut outgoing = pin!(outgoing);
    let mut next = mailbox.next().await;
    let mut unflushed = 0;
    loop {
        match next {
            Next::Frame(frame) => {
                if outgoing.feed(frame).await.is_err() {
                    return;
                }
                unflushed += 1;
                next = match mailbox.take() {
                    Some(waiting) if unflushed < FRAMES_PER_FLUSH => waiting,
                    waiting => {
                        if outgoing.flush().await.is_err() {
                            return;
                        }
                        unflushed = 0;
                        match waiting {
                            Some(waiting) => waiting,
                            None => mailbox.next().await,
                        }
                    }
                };
            }
            Next::Close(code, reason) => {
                let close = CloseFrame {
                    code,
                    reason: reason.to_owned(),
                };
                let _ = outgoing.send(Frame::Close(Some(close))).await;
                // The transport may owe a frame of its own: tungstenite answers a
                // client's close itself, refuses ours after it, and writes its answer
                // only when flushed. Closing the sink flushes it.
                let _ = outgoing.close().await;
                return;
            }
        }
    }
}

/// The code to answer a client's close with: its own, unless it is one a close
/// frame may not carry (RFC 6455 §7.4.1), then 1000.
fn echoable(code: u16) -> u16 {
    match code {
        1000..=1003 | 1007..=1011 | 3000..=4999 => code,
        _ => close_code::NORMAL,
    }
}
