//! The captured interfaces, which come and go: Wi-Fi restarts, PPPoE reconnects and hotplug
//! delete and re-create them, and routers bring some up late.
//!
//! Guarantees:
//! - an interface that vanishes (a capture error, or its name no longer naming the index it
//!   was opened on) is reported down with the reason, its captures are closed, and the
//!   others go on; the pipeline, its flows and the open window are untouched;
//! - a down interface is looked for every [`CHECK_INTERVAL`] (one `if_nametoindex` call) and
//!   reopened once it exists, in a thread of its own (opening may block: the capture thread
//!   goes on reading the other interfaces meanwhile); a reopen
//!   that fails waits twice as long as the one before, up to [`MAX_RETRY`];
//! - an interface missing at start-up is waited for the same way (reported down from the
//!   start) instead of ending the daemon: routers create interfaces late;
//! - counters go on across reopens (the kernel's counters of a closed capture are kept).

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::outputs::InterfaceCounters;
#[cfg(feature = "jobs")]
use crate::capture::FanoutGroups;
use crate::capture::filter::KernelFilter;
use crate::capture::{LiveCapture, LiveInterface, LiveStats};
use crate::time::Timestamp;

/// How often a down interface is looked for, and an open one checked.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Longest wait between two failed reopens of an interface that exists.
pub const MAX_RETRY: Duration = Duration::from_secs(30);

/// How the captures of every interface are opened.
#[derive(Debug, Clone)]
pub struct OpenSpec {
    pub snaplen: u32,
    pub buffer_kib: u32,
    /// The measuring capture's kernel filter (`None`: everything), shared with the threads
    /// that reopen interfaces.
    pub filter: Option<Arc<KernelFilter>>,
    /// Snap length of the classification capture; 0: none.
    pub classify_snaplen: u32,
    /// Said in the log when a capture opens.
    pub filter_text: String,
    /// The fanout groups the workers' measuring captures join, with more than one worker.
    #[cfg(feature = "jobs")]
    pub fanout: Option<Arc<FanoutGroups>>,
    /// Which capture worker opens these captures, and of how many.
    pub worker: (usize, usize),
}

/// An interface going down or coming back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkChange {
    pub interface: String,
    /// `None`: up again; else why it is down.
    pub down: Option<String>,
    pub at: Timestamp,
}

/// Captures being opened in a thread of their own, for the interface index they were
/// opened on.
type Opening = JoinHandle<(Result<LiveInterface, String>, u32)>;

/// Why an interface is down, since when, and when it is next looked for.
struct Down {
    reason: String,
    since: Timestamp,
    next_attempt: Instant,
    retry: Duration,
    opening: Option<Opening>,
}

/// One configured interface, open or down.
pub struct Watched {
    name: String,
    open: Option<(LiveInterface, u32)>,
    down: Option<Down>,
    /// Kernel counters of captures closed before.
    closed_stats: LiveStats,
    reopens: u64,
    checked: Instant,
}

/// The interface's index, or `None` when no interface has this name.
fn index_of(name: &str) -> Option<u32> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: a valid NUL-terminated name; if_nametoindex only reads it.
    #[allow(unsafe_code)]
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (index != 0).then_some(index)
}

fn open_captures(name: &str, spec: &OpenSpec) -> Result<LiveInterface, String> {
    #[cfg_attr(not(feature = "jobs"), expect(unused_mut))]
    let mut measure =
        LiveCapture::open(name, spec.snaplen, spec.buffer_kib, spec.filter.as_deref())?;
    #[cfg(feature = "jobs")]
    if let Some(groups) = &spec.fanout {
        measure.join_fanout(groups)?;
    }
    let classify = match spec.classify_snaplen {
        0 => None,
        snaplen => Some(LiveCapture::open_classification(name, snaplen)?),
    };
    let (worker, workers) = spec.worker;
    super::log(&format!(
        "capturing on {name} ({}), snap length {}, {}, worker {} of {workers}",
        measure.link().name(),
        spec.snaplen,
        spec.filter_text,
        worker + 1
    ));
    Ok(LiveInterface::new(measure, classify))
}

impl Watched {
    /// Open `name`'s captures; an interface that does not exist (yet) is waited for.
    /// An error: it exists and cannot be captured on (permissions, link type).
    pub fn open(name: &str, spec: &OpenSpec, now: Timestamp) -> Result<Watched, String> {
        let mut watched = Watched {
            name: name.to_string(),
            open: None,
            down: None,
            closed_stats: LiveStats::default(),
            reopens: 0,
            checked: Instant::now(),
        };
        let opened = index_of(name).map(|index| (open_captures(name, spec), index));
        match opened {
            Some((Ok(interface), index)) => watched.open = Some((interface, index)),
            // Gone between the look-up and the open: waited for too.
            Some((Err(e), _)) if index_of(name).is_some() => return Err(e),
            _ => {
                let reason = "no such interface".to_string();
                super::log(&format!(
                    "{name}: {reason}; waiting for it (looked for every {} s), reported down",
                    CHECK_INTERVAL.as_secs()
                ));
                watched.set_down(reason, now);
            }
        }
        Ok(watched)
    }

    /// The captures, while the interface is open.
    pub fn captures(&self) -> Option<&LiveInterface> {
        self.open.as_ref().map(|(i, _)| i)
    }

    pub fn captures_mut(&mut self) -> Option<&mut LiveInterface> {
        self.open.as_mut().map(|(i, _)| i)
    }

    /// The counters shown after a window.
    pub fn counters(&mut self, packets: u64) -> InterfaceCounters {
        let open = self.open.as_mut().map(|(i, _)| i.measure().stats()).unwrap_or_default();
        let c = self.closed_stats;
        InterfaceCounters {
            name: self.name.clone(),
            packets,
            kernel: LiveStats {
                received: c.received + open.received,
                dropped: c.dropped + open.dropped,
                if_dropped: c.if_dropped + open.if_dropped,
            },
            down: self.down.as_ref().map(|d| (d.since, d.reason.clone())),
            reopens: self.reopens,
        }
    }

    fn set_down(&mut self, reason: String, now: Timestamp) {
        if let Some((mut interface, _)) = self.open.take() {
            let s = interface.measure().stats();
            self.closed_stats.received += s.received;
            self.closed_stats.dropped += s.dropped;
            self.closed_stats.if_dropped += s.if_dropped;
        }
        self.down = Some(Down {
            reason,
            since: now,
            next_attempt: Instant::now() + CHECK_INTERVAL,
            retry: CHECK_INTERVAL,
            opening: None,
        });
    }

    /// Close a capture that failed (the interface vanished, or went away for good).
    fn lose(&mut self, reason: String, now: Timestamp) -> LinkChange {
        super::log(&format!("{}: down ({reason}); the other interfaces go on", self.name));
        self.set_down(reason.clone(), now);
        LinkChange { interface: self.name.clone(), down: Some(reason), at: now }
    }

    /// Look after the interface: an open one whose name now names another index (or none) is
    /// down; a down one that exists again is reopened when due.
    fn tend(&mut self, spec: &OpenSpec, now: Timestamp) -> Option<LinkChange> {
        if self.checked.elapsed() < CHECK_INTERVAL {
            return None;
        }
        self.checked = Instant::now();
        if let Some((_, opened_index)) = &self.open {
            let reason = match index_of(&self.name) {
                Some(index) if index == *opened_index => return None,
                Some(_) => "the interface was re-created",
                None => "the interface disappeared",
            };
            return Some(self.lose(reason.to_string(), now));
        }
        let down = self.down.as_mut()?;
        if let Some(opening) = down.opening.take_if(|o| o.is_finished()) {
            let opened = opening.join().unwrap_or_else(|_| {
                (Err(format!("{}: the thread opening it failed", self.name)), 0)
            });
            return match opened {
                (Ok(interface), index) => {
                    let down_s = now.since(down.since) / 1_000_000;
                    super::log(&format!("{}: up again after {down_s} s, capturing", self.name));
                    self.open = Some((interface, index));
                    self.down = None;
                    self.reopens += 1;
                    Some(LinkChange { interface: self.name.clone(), down: None, at: now })
                }
                (Err(e), _) => {
                    down.retry = (down.retry * 2).min(MAX_RETRY);
                    down.next_attempt = Instant::now() + down.retry;
                    super::log(&format!("{e}; next try in {} s", down.retry.as_secs()));
                    down.reason = e;
                    None
                }
            };
        }
        if down.opening.is_some() || Instant::now() < down.next_attempt {
            return None;
        }
        let Some(index) = index_of(&self.name) else {
            down.next_attempt = Instant::now() + CHECK_INTERVAL;
            return None;
        };
        let (name, spec) = (self.name.clone(), spec.clone());
        let spawned = std::thread::Builder::new().name(format!("open {name}")).spawn(move || {
            // Opening needs CAP_NET_RAW, held back after the switch to an unprivileged user.
            let _raised = super::system::NetRaw::raise();
            (open_captures(&name, &spec), index)
        });
        match spawned {
            Ok(opening) => down.opening = Some(opening),
            Err(e) => {
                down.next_attempt = Instant::now() + MAX_RETRY;
                super::log(&format!("{}: cannot start a thread to open it: {e}", self.name));
            }
        }
        None
    }
}

/// After a round of reads: close the interfaces whose captures `failed` (index, error), and
/// look after every interface (at most once per [`CHECK_INTERVAL`] each). Returns what
/// changed, for the events.
pub fn tend(
    watched: &mut [Watched],
    failed: Vec<(usize, String)>,
    spec: &OpenSpec,
    now: Timestamp,
) -> Vec<LinkChange> {
    let mut changes: Vec<LinkChange> =
        failed.into_iter().filter_map(|(i, e)| Some(watched.get_mut(i)?.lose(e, now))).collect();
    changes.extend(watched.iter_mut().filter_map(|w| w.tend(spec, now)));
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_interface_is_waited_for_and_reported_down() {
        let spec = OpenSpec {
            snaplen: 256,
            buffer_kib: 256,
            filter: None,
            classify_snaplen: 0,
            filter_text: "no filter".into(),
            #[cfg(feature = "jobs")]
            fanout: None,
            worker: (0, 1),
        };
        let now = Timestamp::from_micros(1_790_000_000_000_000);
        let mut w = Watched::open("tw-absent0", &spec, now).unwrap();
        assert!(w.captures().is_none());
        let c = w.counters(0);
        assert_eq!(c.down, Some((now, "no such interface".to_string())));
        // Looked for no more than once per interval: still down, nothing changed.
        w.checked = Instant::now() - CHECK_INTERVAL;
        if let Some(d) = w.down.as_mut() {
            d.next_attempt = Instant::now();
        }
        assert_eq!(tend(std::slice::from_mut(&mut w), Vec::new(), &spec, now), []);
        assert!(w.down.is_some() && w.captures().is_none());
        assert_eq!(index_of("lo").map(|i| i > 0), Some(true));
        assert_eq!(index_of("tw-absent0"), None);
    }
}
