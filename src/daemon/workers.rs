//! The capture workers' windows, merged into one per window for the main thread's evaluation
//! (`capture_workers`, ARCHITECTURE.md, Capture and decode).
//!
//! Each worker measures the flows the kernel's fanout hands it (every packet of a TCP flow
//! to one worker, every other packet to the first) with its own pipeline and flow table, and
//! cuts windows on the same grid. Guarantees:
//! - a window is evaluated once every worker has sent something since the last: the workers
//!   that sent that window (the earliest any of them holds) give their flows, those already
//!   beyond it (a worker whose grid restarted, or skipped a window) give nothing to it;
//! - the last windows, cut short by a stop, are merged once every worker has sent its last;
//! - a flow's id is the same in every window: its worker's id times the number of workers,
//!   plus the worker's number; the flows are in the order of those ids;
//! - the table's counters the outputs show are the workers' sums (each has the whole
//!   `max_flows`); the interfaces' counters sum every worker's latest, the link state is the
//!   first worker's.

use super::capture::WindowData;
use super::outputs::InterfaceCounters;
use crate::pipeline::{Snapshot, sort_by_id};

/// The windows the workers sent that are not evaluated yet.
pub(crate) struct Windows {
    /// Per worker, oldest first; `true`: the last window, cut short by a stop.
    pending: Vec<Vec<(bool, WindowData)>>,
    /// Every worker's latest interface counters.
    interfaces: Vec<Vec<InterfaceCounters>>,
}

impl Windows {
    /// For the workers whose interface counters at the start are `interfaces`.
    pub fn new(interfaces: Vec<Vec<InterfaceCounters>>) -> Windows {
        Windows { pending: interfaces.iter().map(|_| Vec::new()).collect(), interfaces }
    }

    /// Worker `worker` sent a window (`last`: its last).
    pub fn push(&mut self, worker: usize, last: bool, data: WindowData) {
        if let Some(q) = self.pending.get_mut(worker) {
            self.interfaces[worker].clone_from(&data.interfaces);
            q.push((last, data));
        }
    }

    /// The next window to evaluate, merged, once every worker has sent its part (`true`: the
    /// last one).
    pub fn next(&mut self) -> Option<(bool, WindowData)> {
        if self.pending.iter().any(Vec::is_empty) {
            return None;
        }
        let fronts = || self.pending.iter().map(|q| &q[0]);
        let last = fronts().all(|(last, _)| *last);
        let earliest = (fronts().filter(|(l, _)| *l == last))
            .map(|(_, d)| (d.window.start, d.window.end))
            .min()?;
        let parts: Vec<(usize, WindowData)> = (self.pending.iter_mut().enumerate())
            .filter(|(_, q)| {
                q[0].0 == last && (last || (q[0].1.window.start, q[0].1.window.end) == earliest)
            })
            .map(|(w, q)| (w, q.remove(0).1))
            .collect();
        Some((last, self.merge(parts)))
    }

    /// One window of the parts' flows and counters.
    fn merge(&self, parts: Vec<(usize, WindowData)>) -> WindowData {
        let workers = self.pending.len() as u64;
        let mut parts = parts.into_iter();
        let (first_worker, mut all) = parts.next().expect("a window has a part");
        let renumber = |w: usize, snapshot: &mut Snapshot| {
            for f in &mut snapshot.flows {
                f.id = f.id * workers + w as u64;
            }
        };
        renumber(first_worker, &mut all.snapshot);
        for (w, mut part) in parts {
            renumber(w, &mut part.snapshot);
            // What the outputs show of a window (`Main::window`).
            let (s, p) = (&mut all.snapshot, part.snapshot);
            s.flows.extend(p.flows);
            s.unreported_flows += p.unreported_flows;
            s.table.evicted += p.table.evicted;
            s.table.refused += p.table.refused;
            s.active_flows += p.active_flows;
            s.max_flows += p.max_flows;
            all.window.start = all.window.start.min(part.window.start);
            all.window.end = all.window.end.max(part.window.end);
        }
        sort_by_id(&mut all.snapshot.flows);
        all.interfaces = self.interfaces_now();
        all
    }

    /// The interfaces' counters: packets and the kernel's counters summed over the workers,
    /// the state the first worker's.
    pub fn interfaces_now(&self) -> Vec<InterfaceCounters> {
        let mut workers = self.interfaces.iter();
        let mut sum = workers.next().cloned().unwrap_or_default();
        for counters in workers {
            for (s, c) in sum.iter_mut().zip(counters) {
                s.packets += c.packets;
                s.kernel.received += c.kernel.received;
                s.kernel.dropped += c.kernel.dropped;
                s.kernel.if_dropped += c.kernel.if_dropped;
            }
        }
        sum
    }

    /// Packets each worker measured, over every interface.
    pub fn packets_by_worker(&self) -> Vec<u64> {
        self.interfaces.iter().map(|c| c.iter().map(|i| i.packets).sum()).collect()
    }
}
