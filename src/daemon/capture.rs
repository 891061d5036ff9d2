//! A capture thread (one per capture worker): it reads frames from a [`FrameSource`] (its
//! captures of the live interfaces, or in tests the frames of a trace replayed on a
//! simulated clock), feeds its pipeline, and cuts windows on the packet-time grid
//! ([`WindowGrid`]) that `analyze --window-origin` cuts, from the origin every worker shares.
//!
//! Guarantees, whatever the source:
//! - frames reach the pipeline in the order the source hands them over (each interface's
//!   in packet-time order: [`LiveInterface`] interleaves the full-size classification copies
//!   with their measuring twins);
//! - a window closes before the first measured frame beyond it, or, when nothing is waiting,
//!   once the source's clock (the clock the kernel stamps frames with) is [`WINDOW_GRACE_US`]
//!   past its end: a frame stamped before the end may still be on its way;
//! - a clock stepped back by more than a window (a router without a real-time clock, then
//!   NTP) restarts the grid;
//! - on a stop, every held frame is delivered, the closed windows are sent, then the last,
//!   cut-short one ([`FromCapture::Final`]).

use std::sync::mpsc;

use super::interfaces::{self, LinkChange, OpenSpec, Watched};
use super::outputs::InterfaceCounters;
use crate::capture::kernel_clock;
use crate::capture::{LiveCapture, LiveInterface, Stream};
use crate::classify::Catalogue;
use crate::decode::LinkType;
use crate::detect::{Window, WindowGrid};
use crate::pipeline::{Pipeline, Snapshot};
use crate::time::Timestamp;

/// How long the capture thread waits at most when no interface had a packet waiting.
const IDLE_WAIT_MS: i32 = 50;
/// Packets read from one capture before the next gets its turn.
const BATCH: usize = 4096;
/// How long past a window's end the clock must be, with nothing left to read, before a
/// quiet link's window is closed: packets stamped before the end may still be on their way
/// from the kernel.
pub(crate) const WINDOW_GRACE_US: u64 = 250_000;

/// Messages from a capture thread, each with the thread's worker number.
pub(crate) enum FromCapture {
    Window(usize, Box<WindowData>),
    /// The last window, cut short by a stop.
    Final(usize, Box<WindowData>),
    /// An interface went down or came back.
    Link(usize, LinkChange),
}

pub(crate) struct WindowData {
    pub window: Window,
    pub snapshot: Snapshot,
    /// The catalogue the snapshot's flows were classified with.
    pub catalogue: Catalogue,
    pub interfaces: Vec<InterfaceCounters>,
}

/// Messages to the capture thread.
pub(crate) enum ToCapture {
    /// A new catalogue, for the windows that end at or after the time given: every worker
    /// changes it at the same window's cut, so that the flows of a window the main thread
    /// merges were classified with one catalogue.
    Catalogue(Box<Catalogue>, Timestamp),
    Stop,
}

/// What one [`FrameSource::read`] did.
#[derive(Debug, Default)]
pub(crate) struct Reads {
    /// Frames handed over (measured and full copies).
    pub frames: usize,
    /// Interfaces that went down or came back meanwhile.
    pub changes: Vec<LinkChange>,
}

/// Where the capture thread's frames come from: a frame is its interface's number among
/// several (`None` when there is one), its link type, the capture it came from, its
/// timestamp, its captured bytes and its length on the wire.
pub(crate) trait FrameSource {
    /// Hand what is waiting on every interface (at most [`BATCH`] measured frames each) to
    /// `frame`, each interface's frames in packet-time order.
    fn read(
        &mut self,
        frame: impl FnMut(Option<u32>, LinkType, Stream, Timestamp, &[u8], u32),
    ) -> Reads;
    /// Nothing was waiting: wait a little (at most [`IDLE_WAIT_MS`]) for frames.
    fn wait(&mut self);
    /// The clock the frames are stamped with.
    fn now(&self) -> Timestamp;
    /// The capture stops: hand over every frame still held back.
    fn flush(&mut self, frame: impl FnMut(Option<u32>, LinkType, Stream, Timestamp, &[u8], u32));
    /// Counters and state of every interface, for the outputs.
    fn counters(&mut self) -> Vec<InterfaceCounters>;
}

/// The configured interfaces, captured live; they come and go ([`interfaces`]).
pub(crate) struct LiveSource {
    watched: Vec<Watched>,
    spec: OpenSpec,
    /// Measured frames read, by interface.
    packets: Vec<u64>,
}

impl LiveSource {
    pub fn new(watched: Vec<Watched>, spec: OpenSpec) -> LiveSource {
        let packets = vec![0; watched.len()];
        LiveSource { watched, spec, packets }
    }
}

impl FrameSource for LiveSource {
    fn read(
        &mut self,
        mut frame: impl FnMut(Option<u32>, LinkType, Stream, Timestamp, &[u8], u32),
    ) -> Reads {
        let mut frames = 0;
        let mut failed = Vec::new();
        let several = self.watched.len() > 1;
        for (i, (watched, count)) in self.watched.iter_mut().zip(&mut self.packets).enumerate() {
            let Some(interface) = watched.captures_mut() else { continue };
            // Both captures of an interface are on the same device: one link type.
            let link = interface.measure().link();
            let number = several.then_some(i as u32);
            match interface.poll(BATCH, kernel_clock, |stream, ts, bytes, len| {
                frame(number, link, stream, ts, bytes, len)
            }) {
                Ok(polled) => {
                    *count += polled.measured as u64;
                    frames += polled.measured + polled.copies;
                }
                Err(e) => failed.push((i, e)),
            }
        }
        let changes = interfaces::tend(&mut self.watched, failed, &self.spec, kernel_clock());
        Reads { frames, changes }
    }

    fn wait(&mut self) {
        // Until the kernel hands over packets, or briefly, to end windows, read held copies
        // and see messages on a quiet link.
        let all: Vec<&LiveCapture> = (self.watched.iter())
            .filter_map(Watched::captures)
            .flat_map(LiveInterface::captures)
            .collect();
        LiveCapture::wait_any(&all, IDLE_WAIT_MS);
    }

    fn now(&self) -> Timestamp {
        kernel_clock()
    }

    fn flush(
        &mut self,
        mut frame: impl FnMut(Option<u32>, LinkType, Stream, Timestamp, &[u8], u32),
    ) {
        let several = self.watched.len() > 1;
        for (i, watched) in self.watched.iter_mut().enumerate() {
            let Some(interface) = watched.captures_mut() else { continue };
            let link = interface.measure().link();
            let number = several.then_some(i as u32);
            interface.flush(|stream, ts, bytes, len| frame(number, link, stream, ts, bytes, len));
        }
    }

    fn counters(&mut self) -> Vec<InterfaceCounters> {
        self.watched.iter_mut().zip(&self.packets).map(|(w, &n)| w.counters(n)).collect()
    }
}

/// A window a frame closed while the source was being read, sent once it is.
struct Closed {
    window: Window,
    snapshot: Snapshot,
    catalogue: Catalogue,
}

/// The windows a capture thread closed and has yet to send, and the catalogue it takes at a
/// later window's cut.
#[derive(Default)]
struct Cuts {
    closed: Vec<Closed>,
    /// A new catalogue and the earliest window end it waits for.
    next_catalogue: Option<(Box<Catalogue>, Timestamp)>,
}

impl Cuts {
    /// `window` ends: its snapshot, classified with the catalogue the window ran with; the
    /// next catalogue from then on, when the window ends at or after its time.
    fn cut(&mut self, window: Window, pipeline: &mut Pipeline) {
        self.closed.push(Closed {
            window,
            snapshot: pipeline.snapshot(window.end),
            catalogue: pipeline.catalogue().clone(),
        });
        if let Some((catalogue, _)) = self.next_catalogue.take_if(|(_, from)| window.end >= *from) {
            pipeline.set_catalogue(*catalogue);
        }
    }
}

/// Each frame to the pipeline, told which of several interfaces it came from (a router
/// without NAT shows a packet at two: [`Pipeline::set_interface`]): the measured ones create
/// the flows (and close windows); each full copy comes right after its measuring twin and
/// goes to the classifier only.
fn feed<'a>(
    pipeline: &'a mut Pipeline,
    grid: &'a mut WindowGrid,
    cuts: &'a mut Cuts,
) -> impl FnMut(Option<u32>, LinkType, Stream, Timestamp, &[u8], u32) + 'a {
    move |interface, link, stream, ts, frame, len| match stream {
        Stream::Measured => {
            if let Some(window) = grid.due(ts) {
                cuts.cut(window, pipeline);
            }
            pipeline.set_interface(interface);
            pipeline.process(link, ts, frame, len)
        }
        Stream::FullCopy => pipeline.inspect_full(link, ts, frame, len),
    }
}

/// A capture thread (worker `worker`): read, measure, and cut windows on the grid from
/// `origin`, until a stop (or the main thread is gone).
pub(crate) fn capture_loop(
    worker: usize,
    mut source: impl FrameSource,
    mut pipeline: Pipeline,
    (origin, window_s): (Timestamp, u64),
    to_main: tokio::sync::mpsc::Sender<FromCapture>,
    from_main: mpsc::Receiver<ToCapture>,
) {
    let window_us = window_s * 1_000_000;
    // Windows on packet time from the start, as `analyze --window-origin` cuts them; every
    // worker's on the same grid.
    let mut grid = WindowGrid::new(window_s, Some(origin));
    let mut cuts = Cuts::default();
    loop {
        let reads = source.read(feed(&mut pipeline, &mut grid, &mut cuts));
        for change in reads.changes {
            if to_main.blocking_send(FromCapture::Link(worker, change)).is_err() {
                return;
            }
        }
        if reads.frames == 0 {
            source.wait();
        }
        // The kernel stamps packets with this clock: a quiet link still ends windows, once
        // the source had time to hand over every packet of the window.
        let now = source.now();
        if reads.frames == 0
            && let Some(window) =
                grid.due(Timestamp::from_micros(now.micros().saturating_sub(WINDOW_GRACE_US)))
        {
            cuts.cut(window, &mut pipeline);
        }
        if grid.last(now).is_some_and(|w| w.start.since(now) > window_us) {
            grid = WindowGrid::new(window_s, Some(now));
        }
        let stop = match from_main.try_recv() {
            Ok(ToCapture::Catalogue(catalogue, from)) => {
                cuts.next_catalogue = Some((catalogue, from));
                false
            }
            Ok(ToCapture::Stop) | Err(mpsc::TryRecvError::Disconnected) => true,
            Err(mpsc::TryRecvError::Empty) => false,
        };
        if stop {
            source.flush(feed(&mut pipeline, &mut grid, &mut cuts));
        }
        let interfaces = (!cuts.closed.is_empty() || stop).then(|| source.counters());
        for c in cuts.closed.drain(..) {
            let data = Box::new(WindowData {
                window: c.window,
                snapshot: c.snapshot,
                catalogue: c.catalogue,
                interfaces: interfaces.clone().unwrap_or_default(),
            });
            if to_main.blocking_send(FromCapture::Window(worker, data)).is_err() {
                return;
            }
        }
        if stop {
            let at = now.max(pipeline.clock());
            let window = grid.last(at).unwrap_or(Window { start: at, end: at });
            let data = Box::new(WindowData {
                window,
                snapshot: pipeline.snapshot(at),
                catalogue: pipeline.catalogue().clone(),
                interfaces: interfaces.unwrap_or_default(),
            });
            let _ = to_main.blocking_send(FromCapture::Final(worker, data));
            return;
        }
    }
}
