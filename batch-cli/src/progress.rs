//! A one-line progress bar on stderr, drawn only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How many ops of the total have their result.
pub struct Progress {
    total: usize,
    done: usize,
    drawn: Option<Instant>,
    shown: bool,
}

impl Progress {
    /// A bar for `total` ops, shown when stderr is a terminal.
    pub fn new(total: usize) -> Self {
        Self {
            total,
            done: 0,
            drawn: None,
            shown: std::io::stderr().is_terminal(),
        }
    }

    /// One more op has its result.
    pub fn advance(&mut self) {
        self.done += 1;
        // Redrawn at most 20 times a second: drawing is slower than results come.
        let due = self
            .drawn
            .is_none_or(|at| at.elapsed() >= Duration::from_millis(50));
        if due || self.done == self.total {
            self.draw();
        }
    }

    fn draw(&mut self) {
        if !self.shown {
            return;
        }
        const WIDTH: usize = 30;
        let filled = (self.done * WIDTH).checked_div(self.total).unwrap_or(WIDTH);
        let mut stderr = std::io::stderr().lock();
        let _ = write!(
            stderr,
            "\r[{}{}] {}/{} ops",
            "#".repeat(filled),
            ".".repeat(WIDTH - filled),
            self.done,
            self.total
        );
        let _ = stderr.flush();
        self.drawn = Some(Instant::now());
    }

    /// Clears the bar, so what follows starts on a clean line.
    pub fn finish(&self) {
        if self.shown && self.drawn.is_some() {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[2K");
            let _ = stderr.flush();
        }
    }
}
