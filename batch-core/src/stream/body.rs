//! The endpoint's answer body: the buffered answer whole, or a streamed one that
//! runs its batch as it is read.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

/// The body of [`BatchEndpoint::respond`](crate::BatchEndpoint::respond)'s answer.
///
/// A buffered answer or a problem is one chunk. A streamed answer owns its batch:
/// `F` runs it, polled whenever the body is, and writes each result into the body
/// as its op finishes. Reading the body is what runs the batch; dropping it (the
/// client went away) cancels every op not yet finished.
#[derive(Debug)]
pub struct BatchBody<F> {
    inner: Inner<F>,
}

#[derive(Debug)]
enum Inner<F> {
    Full(Option<Bytes>),
    Streamed {
        /// The batch, until it has finished.
        driver: Option<Pin<Box<F>>>,
        /// What it wrote and the reader has not taken yet.
        frames: mpsc::Receiver<Bytes>,
    },
}

impl<F> BatchBody<F> {
    /// A body of `bytes`, whole.
    pub(crate) fn full(bytes: Bytes) -> Self {
        Self {
            inner: Inner::Full(Some(bytes)),
        }
    }

    /// A body of what `driver` sends through the channel `frames` receives from.
    pub(crate) fn streamed(driver: F, frames: mpsc::Receiver<Bytes>) -> Self {
        Self {
            inner: Inner::Streamed {
                driver: Some(Box::pin(driver)),
                frames,
            },
        }
    }

    /// The whole answer of a body that is not streamed, or the body back.
    pub(crate) fn into_full(self) -> Result<Bytes, Self> {
        match self.inner {
            Inner::Full(bytes) => Ok(bytes.unwrap_or_default()),
            inner => Err(Self { inner }),
        }
    }

    /// Whether the answer is streamed.
    pub fn is_streamed(&self) -> bool {
        matches!(self.inner, Inner::Streamed { .. })
    }
}

impl<F: Future<Output = ()>> Body for BatchBody<F> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.get_mut().inner {
            Inner::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Inner::Streamed { driver, frames } => {
                // The batch runs only while its reader reads: it is polled here, and
                // waits when the channel is full until a frame is taken.
                if let Some(running) = driver {
                    if running.as_mut().poll(cx).is_ready() {
                        *driver = None;
                    }
                }
                // The driver holds the sender: once it has finished, the channel
                // ends after the last frame.
                frames
                    .poll_recv(cx)
                    .map(|frame| frame.map(|b| Ok(Frame::data(b))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Full(bytes) => bytes.is_none(),
            Inner::Streamed { driver, frames } => {
                driver.is_none() && frames.is_empty() && frames.is_closed()
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Inner::Streamed { .. } => SizeHint::default(),
        }
    }
}
