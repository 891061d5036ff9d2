//! What the latest windows judged, kept by the caller from one window to the next (pass the
//! same [`Recent`] to every [`evaluate_window`](super::evaluate_window) call): a short window
//! may hold a single attempt of a kind, or no control connection at all, where the minute
//! before it held several. Windows ending less than [`MEMORY_US`] before a window's end count
//! with it; windows of a minute and longer judge only their own.
//!
//! - The connection attempts of the service and the controls, with whether they went
//!   unanswered (blocking: [`RecentAttempts`]).
//! - The control connections that could stall and whether they did (stalls:
//!   [`RecentConnections`]), for windows where too few control connections ran.
//! - The connections the verdicts named policed ([`RecentPoliced`]), whose token lines the
//!   next windows continue, with the control goodput beside them.

use crate::classify::Catalogue;
use crate::config::DetectConfig;
use crate::pipeline::FinishedFlow;
use crate::time::Timestamp;

pub(super) use super::blocking::RecentAttempts;
pub(super) use super::policing::RecentPoliced;
pub(super) use super::stall::RecentConnections;

/// How long what earlier windows judged counts (module docs).
pub const MEMORY_US: u64 = 60_000_000;
/// Most entries of each kind remembered: the oldest go first.
pub(super) const MEMORY_MAX: usize = 1024;

/// The latest windows' attempts and control connections (module docs).
#[derive(Debug, Default)]
pub struct Recent {
    pub(super) attempts: RecentAttempts,
    pub(super) connections: RecentConnections,
    pub(super) policed: RecentPoliced,
}

impl Recent {
    /// Before a window is judged: forget the attempts if the catalogue's services are not
    /// those they were recorded with.
    pub fn follow(&mut self, catalogue: &Catalogue) {
        self.attempts.follow(catalogue);
    }

    /// After a window is judged (its `verdicts`): keep what it judged, in place of what earlier
    /// windows said of the same flows, and forget what is too old to count at the next.
    pub fn remember(
        &mut self,
        flows: &[&FinishedFlow],
        verdicts: &[super::Verdict],
        window: super::Window,
        cfg: &DetectConfig,
    ) {
        self.attempts.remember(flows, window, cfg);
        self.connections.remember(flows, window, cfg);
        self.policed.remember(verdicts, window);
    }
}

/// What windows judged of flows, an entry a word, with the end of the window that judged it:
/// oldest first, none older than [`MEMORY_US`] before the latest window's end, at most
/// [`MEMORY_MAX`] (the stalls' control connections, the policed connections).
#[derive(Debug, Default)]
pub(super) struct Memory {
    /// (that window's end in µs, entry): two words an entry.
    list: Vec<(u64, u64)>,
}

impl Memory {
    /// After the window ending at `end` is judged: keep its entries (`fresh`) in place of
    /// those of the same flows (`flow` of an entry), and forget what is too old to count at
    /// the next window.
    pub fn remember(&mut self, end: Timestamp, fresh: Vec<u64>, flow: fn(u64) -> u64) {
        let end = end.micros();
        let oldest = end.saturating_sub(MEMORY_US);
        self.list
            .retain(|&(at, entry)| at > oldest && !fresh.iter().any(|&e| flow(e) == flow(entry)));
        self.list.extend(fresh.into_iter().map(|entry| (end, entry)));
        let excess = self.list.len().saturating_sub(MEMORY_MAX);
        self.list.drain(..excess);
    }

    /// The entries of windows ending less than [`MEMORY_US`] before `end`.
    pub fn before(&self, end: Timestamp) -> impl Iterator<Item = u64> + '_ {
        let end = end.micros();
        (self.list.iter())
            .filter(move |&&(at, _)| at < end && end - at < MEMORY_US)
            .map(|&(_, entry)| entry)
    }
}
