//! `analyze -j N`: the packets of a trace measured by N worker threads, each with its own
//! pipeline, with the same report, verdicts and JSON lines as one pipeline gives (the
//! equivalence test in `tests/cli.rs` compares them byte for byte on every lab sample and
//! corpus capture).
//!
//! The workers read each input file together, mostly once: it is cut into parts of
//! [`PART_BYTES`], and the first worker to come to a part reads it (a positioned read) and
//! holds it for the others, which take it from there ([`SharedFile`]), so the kernel copies
//! most of the file once, shared between the cores. At most [`HELD_PARTS`] parts are held: a
//! worker that gets that far ahead of another (whose flows cost more in that stretch of the
//! trace) reads the parts for itself rather than wait. Every worker parses every record of
//! every part, where it lies ([`TraceFile::from_shared`]: only a record across two parts is
//! copied), passes over the packets of flows it does not own after a cheap test
//! ([`FlowKey::plain_tcp_shard`]: a plain TCP packet's addresses and ports read at fixed
//! offsets; anything else decoded) and measures the others. Every worker thus sees every
//! packet at its place in the trace, and what ties flows together is kept as one pipeline
//! keeps it:
//! - TCP flows are spread by [`FlowKey::shard`], a hash of the direction-free key. Every UDP
//!   flow, and every packet that does not decode, belongs to worker 0: UDP flows teach each
//!   other their service (a call's legs share sockets, ICE fragments and STUN addresses; QUIC
//!   Initials wait in one table), so they stay in one classifier. TCP flows learn only from
//!   DNS answers, which every worker learns from at their place in the trace.
//! - Idle flows are checked for at the same packet times in every worker: each keeps the
//!   run's clock (of every packet read and every window's end, as one pipeline keeps it).
//! - Windows are cut at the same packets in every worker (each has the window grid); each
//!   sends its snapshot to the caller's thread, which merges them, judges the window and
//!   streams what finished.
//! - Flow ids are the order of creation over the whole run: each worker numbers the packets
//!   and says at which packet it created each flow, and the caller numbers them in that order
//!   at each window's end.
//! - The table's peak is the most flows held by all workers at once: flows are only removed
//!   at the checks and the windows' ends, which all workers share, so the peak is the largest
//!   sum of the workers' open flows just before one of them.
//! - Every worker reads the same bytes: a file is opened once, by the caller, and its length
//!   taken then; no part beyond it is read (a file still being written is read as far as it
//!   was then), and a part that comes short (the file shrank) ends the file. A truncated or
//!   corrupt file stops every worker at the same record, with the error one pipeline gives;
//!   the caller reports worker 0's. A file changed in place while two workers read the same
//!   part each (they then disagree) gives an error and no results.
//!
//! Standard input and pipes cannot be read this way: [`open_shared`] says so, and `analyze`
//! reads them with one pipeline, whatever `-j`.
//!
//! Limits: each worker has the whole `--max-flows` and `--detail-flows` (memory up to N
//! times one pipeline's): whenever one pipeline never fills its table or its detail pool, the
//! results are the same; when it does, the workers evict, refuse and deny detail to fewer
//! flows than it would. With more than 64 IPv4 datagrams in fragments at once, a worker's
//! pipeline's fragment cache (which sees only its own flows) may attribute a later fragment
//! that one pipeline's would have lost. A DNS answer teaches every worker even when its own
//! flow was refused by a full table.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use super::{Judge, Progress};
use crate::capture::{self, CaptureError, SharedBytes, TraceFile, TraceFormat};
use crate::classify::{Catalogue, Classifier};
use crate::config::PipelineConfig;
use crate::decode::{self, Decoded, FragmentCache, IPPROTO_TCP, LinkType, Transport};
use crate::detect::{Window, WindowGrid};
use crate::flow::{FlowKey, Proto};
use crate::pipeline::{Analysis, EXPIRY_INTERVAL_US, FinishedFlow, Pipeline, sort_by_id};
use crate::report::InputReport;
use crate::time::Timestamp;

/// The worker that measures every UDP flow (module docs).
const UDP_WORKER: usize = 0;

/// An input as the workers read it: its path, and the file they share, or the message of
/// the error that opening it gave.
pub(super) struct SharedInput {
    path: PathBuf,
    file: Result<Arc<SharedFile>, String>,
}

/// The inputs opened for `jobs` workers to read once, together (module docs), or `None` when
/// one of them cannot be read that way (standard input, a pipe, a device).
pub(super) fn open_shared(files: &[PathBuf], jobs: usize) -> Option<Vec<SharedInput>> {
    let open = |path: &PathBuf| {
        if path == Path::new("-") {
            return None;
        }
        if let Ok(m) = std::fs::metadata(path)
            && !m.is_file()
            && !m.is_dir()
        {
            return None;
        }
        let file = match capture::open_file(path) {
            Ok(file) => match file.metadata() {
                Ok(m) => Ok(Arc::new(SharedFile::new(file, m.len(), jobs))),
                Err(e) => Err(format!("cannot read: {e}")),
            },
            Err(CaptureError::Open { message, .. }) => Err(message),
            Err(e) => Err(e.to_string()),
        };
        Some(SharedInput { path: path.clone(), file })
    };
    files.iter().map(open).collect()
}

/// What a worker tells the caller, in the order of the trace (every worker tells the same).
#[derive(Debug)]
enum Said {
    /// An input read to its end or to the error that stopped it (`opened`: its format and
    /// link type, when it opened).
    Input { opened: Option<(TraceFormat, LinkType)>, packets: u64, error: Option<CaptureError> },
    /// A window ended: its snapshot.
    Cut(Window, Reply),
    /// The end of the inputs: whether a packet decoded, and the window in progress; the
    /// worker then waits to be told whether to cut it.
    End { decoded: bool, last: Option<Window> },
}

impl Said {
    /// Whether two workers said the same (what is compared of it).
    fn agrees(&self, other: &Said) -> bool {
        match (self, other) {
            (
                Said::Input { packets: a, error: e, .. },
                Said::Input { packets: b, error: f, .. },
            ) => {
                a == b && e.as_ref().map(ToString::to_string) == f.as_ref().map(ToString::to_string)
            }
            (Said::Cut(a, _), Said::Cut(b, _)) => a.start == b.start && a.end == b.end,
            (Said::End { last: a, .. }, Said::End { last: b, .. }) => {
                a.as_ref().map(|w| (w.start, w.end)) == b.as_ref().map(|w| (w.start, w.end))
            }
            _ => false,
        }
    }
}

/// A worker's snapshot at a window's end, or what it leaves at the end of the input.
#[derive(Debug, Default)]
struct Reply {
    /// The window's snapshot flows, and the finished flows it drained.
    flows: Vec<FinishedFlow>,
    drained: Vec<FinishedFlow>,
    /// The packet (numbered over the run) that created each of its flows since the last
    /// reply, in order.
    created: Vec<u64>,
    /// Its open flows just before each check for idle flows since the last reply, and just
    /// before this cut (or the end).
    open: Vec<usize>,
}

/// Measure the inputs [`open_shared`] opened with `jobs` workers (module docs): the analysis,
/// the inputs as the report shows them and the errors met, as one pipeline would give them.
pub(super) fn run(
    jobs: usize,
    inputs: Vec<SharedInput>,
    config: PipelineConfig,
    catalogue: &Catalogue,
    grid: WindowGrid,
    mut progress: Option<Progress>,
    judge: &mut Judge<'_>,
) -> (Analysis, Vec<InputReport>, Vec<CaptureError>) {
    let drain = judge.drains();
    let inputs = Arc::new(inputs);
    let mut workers: Vec<Boss> = (0..jobs)
        .map(|me| {
            let (say, heard) = sync_channel(2);
            let (tell, told) = sync_channel(1);
            let worker = Worker {
                me,
                jobs,
                pipeline: Pipeline::new(config, Classifier::new(catalogue.clone())),
                grid: grid.clone(),
                fragments: FragmentCache::default(),
                seq: 0,
                clock: Timestamp::default(),
                next_expiry: Timestamp::default(),
                reply: Reply::default(),
                drain,
                say,
                progress: if me == 0 { progress.take() } else { None },
            };
            let inputs = Arc::clone(&inputs);
            let thread = std::thread::Builder::new()
                .name(format!("analyze-{me}"))
                .spawn(move || worker.run(&inputs, told))
                .expect("the system starts a thread");
            Boss { heard, tell, thread: Some(thread) }
        })
        .collect();

    let mut ids = FlowIds { per_worker: vec![0; jobs], ..FlowIds::default() };
    let mut peak = 0;
    let mut reports = Vec::with_capacity(inputs.len());
    let mut errors = Vec::new();
    let mut ended = false;
    let changed = loop {
        // One thing from every worker: the same thing.
        let said: Vec<Said> = workers.iter_mut().map(Boss::hear).collect();
        if !said.iter().all(|s| s.agrees(&said[0])) {
            break Some(said);
        }
        let mut said = said.into_iter();
        match said.next() {
            Some(Said::Input { opened, packets, error }) => {
                let path = inputs.get(reports.len()).map(|i| i.path.display().to_string());
                reports.push(InputReport {
                    path: path.unwrap_or_default(),
                    format: opened.map(|(format, _)| format.to_string()),
                    link_type: opened.map(|(_, link)| link.name().to_string()),
                    packets,
                    error: error.as_ref().map(ToString::to_string),
                });
                errors.extend(error);
            }
            Some(Said::Cut(window, first)) => {
                let mut replies = vec![first];
                replies.extend(said.filter_map(|s| match s {
                    Said::Cut(_, reply) => Some(reply),
                    _ => None,
                }));
                count(&mut ids, &mut peak, &replies);
                let (mut flows, mut drained) = (Vec::new(), Vec::new());
                for (w, reply) in replies.iter_mut().enumerate() {
                    ids.rename(w, &mut reply.flows, false);
                    ids.rename(w, &mut reply.drained, true);
                    flows.append(&mut reply.flows);
                    drained.append(&mut reply.drained);
                }
                sort_by_id(&mut flows);
                sort_by_id(&mut drained);
                judge.window(window, &flows, &drained, catalogue);
                if ended {
                    break None;
                }
            }
            Some(Said::End { decoded, last }) => {
                let decoded = decoded || said.any(|s| matches!(s, Said::End { decoded: true, .. }));
                let cut = decoded && last.is_some();
                for w in &workers {
                    let _ = w.tell.send(cut);
                }
                if !cut {
                    break None;
                }
                // The last window's snapshots come next.
                ended = true;
            }
            None => break None,
        }
    };
    if let Some(said) = changed {
        // Wait for every worker to end (those told to cut the last window end after it), and
        // keep nothing of what they measured.
        for (w, mut said) in workers.iter_mut().zip(said) {
            while !ended && !matches!(said, Said::End { .. }) {
                said = w.hear();
            }
            let _ = w.tell.send(false);
        }
        for w in &mut workers {
            w.end();
        }
        let path = inputs.get(reports.len()).or(inputs.last()).map(|i| i.path.clone());
        let path = path.unwrap_or_default();
        let message =
            format!("changed while {jobs} threads read it, which then disagree: read it with -j 1");
        reports.push(InputReport {
            path: path.display().to_string(),
            format: None,
            link_type: None,
            packets: 0,
            error: Some(message.clone()),
        });
        errors.push(CaptureError::Open { path, message });
        let empty = Pipeline::new(config, Classifier::new(catalogue.clone()));
        return (empty.finish(), reports, errors);
    }
    let ends: Vec<(Analysis, Reply)> = workers.iter_mut().map(Boss::end).collect();
    let (mut parts, replies): (Vec<Analysis>, Vec<Reply>) = ends.into_iter().unzip();
    count(&mut ids, &mut peak, &replies);
    for (w, part) in parts.iter_mut().enumerate() {
        ids.rename(w, &mut part.flows, true);
    }
    let mut parts = parts.into_iter();
    let mut all = parts.next().expect("at least one worker");
    for part in parts {
        all.flows.extend(part.flows);
        let (s, p) = (&mut all.stats, &part.stats);
        s.packets += p.packets;
        s.skipped.add_all(&p.skipped);
        s.first_at = earliest(s.first_at, p.first_at);
        s.last_at = s.last_at.max(p.last_at);
        let (t, p) = (&mut all.table, &part.table);
        t.created += p.created;
        t.expired += p.expired;
        t.evicted += p.evicted;
        t.refused += p.refused;
        all.detail_refused += part.detail_refused;
        all.histograms.add(&part.histograms);
    }
    all.table.peak = peak;
    sort_by_id(&mut all.flows);
    (all, reports, errors)
}

/// Number the flows the workers created since their last replies, and follow the peak.
fn count(ids: &mut FlowIds, peak: &mut usize, replies: &[Reply]) {
    let created: Vec<&[u64]> = replies.iter().map(|r| r.created.as_slice()).collect();
    ids.number(&created);
    let checks = replies.iter().map(|r| r.open.len()).min().unwrap_or(0);
    for i in 0..checks {
        *peak = (*peak).max(replies.iter().map(|r| r.open[i]).sum());
    }
}

/// The caller's side of one worker.
struct Boss {
    heard: Receiver<Said>,
    tell: SyncSender<bool>,
    thread: Option<JoinHandle<(Analysis, Reply)>>,
}

impl Boss {
    fn hear(&mut self) -> Said {
        match self.heard.recv() {
            Ok(said) => said,
            // Gone before its end: it panicked, and joining it says so.
            Err(_) => {
                self.end();
                unreachable!("a worker ends only after it was told to")
            }
        }
    }

    /// Wait for the worker to finish; a worker's panic is the caller's.
    fn end(&mut self) -> (Analysis, Reply) {
        let thread = self.thread.take().expect("a worker is ended once");
        match thread.join() {
            Ok(end) => end,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// A worker thread: its pipeline, and what it keeps of the whole run.
struct Worker {
    me: usize,
    jobs: usize,
    pipeline: Pipeline,
    grid: WindowGrid,
    /// For the packets it decodes to find their owner (as one pipeline's cache sees them).
    fragments: FragmentCache,
    /// Packets read; the latest time of a packet or a window's end, and the next check for
    /// idle flows (as one pipeline keeps them).
    seq: u64,
    clock: Timestamp,
    next_expiry: Timestamp,
    reply: Reply,
    /// Drain the finished flows at each window's end (streaming).
    drain: bool,
    say: SyncSender<Said>,
    /// The progress line (worker 0's).
    progress: Option<Progress>,
}

impl Worker {
    /// Read every input (each no further than its length, sharing the parts with the other
    /// workers), then wait to be told whether to cut the last window.
    fn run(mut self, inputs: &[SharedInput], told: Receiver<bool>) -> (Analysis, Reply) {
        self.pipeline.expire_externally();
        for input in inputs {
            let before = self.seq;
            let path = input.path.clone();
            let file = match &input.file {
                Ok(file) => {
                    let parts = Parts { me: self.me, file: Arc::clone(file), next: 0, error: None };
                    TraceFile::from_shared(path, Box::new(parts))
                }
                Err(message) => Err(CaptureError::Open { path, message: message.clone() }),
            };
            let (opened, error) = match file {
                Err(e) => (None, Some(e)),
                Ok(mut file) => {
                    let opened = Some((file.format(), file.link()));
                    // Inlined into the readers' loops, as one pipeline's (`analyze.rs`).
                    let read = file.for_each_packet(
                        #[inline(always)]
                        |link, ts, frame, wire_len| self.packet(link, ts, frame, wire_len),
                    );
                    (opened, read.err())
                }
            };
            self.tell(Said::Input { opened, packets: self.seq - before, error });
        }
        if let Some(p) = &self.progress {
            p.done();
        }
        let decoded = self.pipeline.stats().first_at.is_some();
        self.tell(Said::End { decoded, last: self.grid.last(self.clock) });
        if told.recv().unwrap_or(false)
            && let Some(last) = self.grid.last(self.clock)
        {
            self.cut(last);
        }
        self.reply.open.push(self.pipeline.open_flows());
        (self.pipeline.finish(), self.reply)
    }

    fn tell(&self, said: Said) {
        // The caller is gone only when another worker panicked: it says so.
        let _ = self.say.send(said);
    }

    /// One packet of the trace: measured if its flow is this worker's; its time, in any case.
    #[inline(always)]
    fn packet(&mut self, link: LinkType, ts: Timestamp, frame: &[u8], wire_len: u32) {
        if let Some(window) = self.grid.due(ts) {
            self.cut(window);
        }
        self.seq += 1;
        self.clock = self.clock.max(ts);
        if self.clock >= self.next_expiry {
            self.expire();
        }
        let owner = match FlowKey::plain_tcp_shard(link, frame, self.jobs) {
            Some(owner) => owner,
            None => self.decoded_owner(link, ts, frame, wire_len),
        };
        if owner == self.me {
            let before = self.pipeline.flows_created();
            self.pipeline.process(link, ts, frame, wire_len);
            if self.pipeline.flows_created() != before {
                self.reply.created.push(self.seq);
            }
        }
        if let Some(p) = &mut self.progress {
            p.packet(frame.len(), None);
        }
    }

    #[cold]
    #[inline(never)]
    fn expire(&mut self) {
        self.next_expiry = self.clock.add_micros(EXPIRY_INTERVAL_US);
        self.reply.open.push(self.pipeline.open_flows());
        self.pipeline.expire(self.clock);
    }

    /// The owner of a packet the fast path does not read: decoded in full (which also keeps
    /// the worker's own fragment cache as one pipeline's), and a DNS answer learned from
    /// when another worker measures it. A packet that does not decode is worker 0's, which
    /// counts it as one pipeline would.
    #[cold]
    #[inline(never)]
    fn decoded_owner(
        &mut self,
        link: LinkType,
        ts: Timestamp,
        frame: &[u8],
        wire_len: u32,
    ) -> usize {
        let Ok(packet) = decode::decode(link, ts, frame, wire_len, &mut self.fragments) else {
            return UDP_WORKER;
        };
        let owner = owner(&packet, self.jobs);
        if let Transport::Udp(u) = packet.transport
            && u.src_port == 53
            && owner != self.me
        {
            self.pipeline.learn_dns(u.payload, ts);
        }
        owner
    }

    /// A window ends: its snapshot to the caller.
    #[cold]
    #[inline(never)]
    fn cut(&mut self, window: Window) {
        self.clock = self.clock.max(window.end);
        self.reply.open.push(self.pipeline.open_flows());
        self.reply.flows = self.pipeline.snapshot(window.end).flows;
        if self.drain {
            self.reply.drained = self.pipeline.drain_finished().collect();
        }
        let reply = std::mem::take(&mut self.reply);
        self.tell(Said::Cut(window, reply));
    }
}

/// Bytes of the parts a file is read in, each by the first worker that comes to it, for all
/// (module docs): a few hundred records, small enough to be in the cache still when the
/// worker that read it measures them.
const PART_BYTES: u64 = 256 * 1024;

/// How many parts may be held at once: a worker that comes to a part while a worker this far
/// behind has not taken the part as far before it yet reads the part for itself (so at most
/// this many parts' bytes are held, whatever the workers' pace, and no worker waits for one
/// that is behind).
const HELD_PARTS: usize = 64;

/// A part of a file as a worker read it for all: its number, its bytes (fewer than the part's
/// length when the file ended before, having shrunk), and the error that stopped its read
/// after them.
#[derive(Clone)]
struct Part {
    index: u64,
    bytes: SharedBytes,
    error: Option<(io::ErrorKind, String)>,
}

/// One input as the workers share it (module docs).
pub(super) struct SharedFile {
    file: File,
    /// Bytes that every worker reads of the file, and the parts they make.
    file_bytes: u64,
    parts: u64,
    held: Mutex<Held>,
    /// Told when a part is read, a worker moves on, or a part is dropped.
    moved: Condvar,
}

/// The parts held for the workers that have not taken them yet.
struct Held {
    /// Part `i` in slot `i` modulo [`HELD_PARTS`], from its read to its taking by the last
    /// worker.
    slots: Vec<Slot>,
    /// The next part each worker takes (`u64::MAX`: it has stopped reading the file).
    next: Vec<u64>,
    /// Buffers of parts dropped, for reuse once no worker parses them any more.
    spare: Vec<SharedBytes>,
    /// Workers waiting for `moved`.
    waiting: usize,
}

enum Slot {
    Free,
    Reading(u64),
    Read(Part),
}

impl SharedFile {
    fn new(file: File, file_bytes: u64, jobs: usize) -> SharedFile {
        let held = Held {
            slots: (0..HELD_PARTS).map(|_| Slot::Free).collect(),
            next: vec![0; jobs],
            spare: Vec::new(),
            waiting: 0,
        };
        SharedFile {
            file,
            file_bytes,
            parts: file_bytes.div_ceil(PART_BYTES),
            held: Mutex::new(held),
            moved: Condvar::new(),
        }
    }

    /// Part `index`, for worker `me`: read by the first worker that comes to it (`me`, then)
    /// and held until every worker has taken it; read by `me` alone when its slot still holds
    /// a part a worker far behind has not taken yet.
    fn take(&self, me: usize, index: u64) -> Part {
        let slot = (index % HELD_PARTS as u64) as usize;
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            match &held.slots[slot] {
                Slot::Read(part) if part.index == index => {
                    let part = part.clone();
                    self.moved_on(&mut held, me, index);
                    return part;
                }
                // Another worker reads it: it takes less to wait than to read it again.
                Slot::Reading(reading) if *reading == index => {
                    held.waiting += 1;
                    held = self.moved.wait(held).unwrap_or_else(PoisonError::into_inner);
                    held.waiting -= 1;
                }
                Slot::Free => break,
                Slot::Reading(_) | Slot::Read(_) => {
                    let buffer = spare(&mut held);
                    self.moved_on(&mut held, me, index);
                    drop(held);
                    return self.read(index, buffer);
                }
            }
        }
        // Held for the others unless all have passed it (they read it themselves).
        let others = held.next.iter().enumerate().any(|(w, &next)| w != me && next <= index);
        if others {
            held.slots[slot] = Slot::Reading(index);
        }
        let buffer = spare(&mut held);
        drop(held);
        let part = self.read(index, buffer);
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if others {
            held.slots[slot] = Slot::Read(part.clone());
        }
        self.moved_on(&mut held, me, index);
        part
    }

    /// Worker `me` has taken part `index` (`u64::MAX`: it stops reading): the parts every
    /// worker has taken are dropped, and the waiting workers told.
    fn moved_on(&self, held: &mut Held, me: usize, index: u64) {
        held.next[me] = index.saturating_add(1);
        let behind = held.next.iter().copied().min().unwrap_or(u64::MAX);
        for slot in &mut held.slots {
            if let Slot::Read(part) = slot
                && part.index < behind
                && let Slot::Read(part) = std::mem::replace(slot, Slot::Free)
                && held.spare.len() < HELD_PARTS
            {
                held.spare.push(part.bytes);
            }
        }
        if held.waiting > 0 {
            self.moved.notify_all();
        }
    }

    /// Read part `index` of the file, into `buffer` if it is given.
    fn read(&self, index: u64, buffer: Option<SharedBytes>) -> Part {
        let at = index * PART_BYTES;
        let want = usize::try_from((self.file_bytes - at).min(PART_BYTES)).unwrap_or(0);
        let mut bytes = buffer.unwrap_or_else(|| Arc::new(vec![0; want]));
        let (mut got, mut error) = (0, None);
        if let Some(buf) = Arc::get_mut(&mut bytes) {
            buf.resize(want, 0);
            while got < want {
                match self.file.read_at(&mut buf[got..], at + got as u64) {
                    // The file shrank: it ends here.
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        error = Some((e.kind(), e.to_string()));
                        break;
                    }
                }
            }
            buf.truncate(got);
        }
        Part { index, bytes, error }
    }
}

/// A buffer of a dropped part that no worker parses any more, if there is one.
fn spare(held: &mut Held) -> Option<SharedBytes> {
    let at = held.spare.iter().position(|b| Arc::strong_count(b) == 1)?;
    Some(held.spare.swap_remove(at))
}

/// One input as one worker takes it: part by part, in the file's order (module docs).
struct Parts {
    me: usize,
    file: Arc<SharedFile>,
    /// The next part to take.
    next: u64,
    /// The error that stopped a read after the part last taken.
    error: Option<(io::ErrorKind, String)>,
}

impl Iterator for Parts {
    type Item = io::Result<SharedBytes>;

    fn next(&mut self) -> Option<io::Result<SharedBytes>> {
        if let Some((kind, message)) = self.error.take() {
            self.next = self.file.parts;
            return Some(Err(io::Error::new(kind, message)));
        }
        if self.next >= self.file.parts {
            return None;
        }
        let part = self.file.take(self.me, self.next);
        let whole = part.bytes.len() as u64
            == (self.file.file_bytes - part.index * PART_BYTES).min(PART_BYTES);
        // A part that comes short ends the file.
        self.next = if whole { part.index + 1 } else { self.file.parts };
        self.error = part.error;
        Some(Ok(part.bytes))
    }
}

impl Drop for Parts {
    /// No worker waits for this one to take the parts it will not.
    fn drop(&mut self) {
        let mut held = self.file.held.lock().unwrap_or_else(PoisonError::into_inner);
        self.file.moved_on(&mut held, self.me, u64::MAX);
    }
}

/// Global flow ids from the workers' own (module docs).
#[derive(Debug, Default)]
struct FlowIds {
    /// Flows numbered so far, over all workers and per worker.
    total: u64,
    per_worker: Vec<u64>,
    /// (worker, its id) → the run's id, for the flows that may still be reported.
    ids: HashMap<(usize, u64), u64>,
}

impl FlowIds {
    /// Number the flows the workers created since the last call, in the order of the
    /// packets that created them.
    fn number(&mut self, created: &[&[u64]]) {
        // Each worker's list is in the order of the trace: merge them.
        let mut next = vec![0; created.len()];
        while let Some(w) = (0..created.len())
            .filter(|&w| next[w] < created[w].len())
            .min_by_key(|&w| created[w][next[w]])
        {
            next[w] += 1;
            self.per_worker[w] += 1;
            self.total += 1;
            self.ids.insert((w, self.per_worker[w]), self.total);
        }
    }

    /// Give a worker's flows the run's ids; `last`: they will not be reported again.
    fn rename(&mut self, worker: usize, flows: &mut [FinishedFlow], last: bool) {
        for f in flows {
            let key = (worker, f.id);
            let id = if last { self.ids.remove(&key) } else { self.ids.get(&key).copied() };
            f.id = id.expect("every flow a worker reports was numbered at its creation");
        }
    }
}

fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The worker that measures a decoded packet's flow (module docs).
fn owner(packet: &Decoded<'_>, shards: usize) -> usize {
    let ip = &packet.ip;
    let words =
        |sport, dport| FlowKey::from_words(Proto::Tcp, ip.v6, (ip.src, sport), (ip.dst, dport));
    let key = match packet.transport {
        Transport::Tcp(t) => words(t.src_port, t.dst_port).0,
        Transport::Fragment(f) if f.proto == IPPROTO_TCP => words(f.src_port, f.dst_port).0,
        Transport::IcmpError(e) if e.quoted_proto == IPPROTO_TCP => {
            let (src, dst) = ((e.quoted_src, e.quoted_src_port), (e.quoted_dst, e.quoted_dst_port));
            FlowKey::from_words(Proto::Tcp, e.v6, src, dst).0
        }
        _ => return UDP_WORKER,
    };
    key.shard(shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What each of `jobs` workers takes of a file whose length was taken as `file_bytes`.
    fn taken(path: &Path, file_bytes: u64, jobs: usize) -> Vec<Result<Vec<u8>, String>> {
        let file = Arc::new(SharedFile::new(File::open(path).unwrap(), file_bytes, jobs));
        let threads: Vec<_> = (0..jobs)
            .map(|me| {
                let file = Arc::clone(&file);
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    for part in (Parts { me, file, next: 0, error: None }) {
                        got.extend_from_slice(&part.map_err(|e| e.to_string())?);
                    }
                    Ok(got)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    }

    #[test]
    fn every_worker_takes_the_whole_file_in_order() {
        let path = std::env::temp_dir().join(format!("tw-parts-{}.bin", std::process::id()));
        let bytes: Vec<u8> =
            (0..PART_BYTES * (HELD_PARTS as u64 + 7) + 123).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        for jobs in [2, 3] {
            for got in taken(&path, bytes.len() as u64, jobs) {
                assert!(got.unwrap() == bytes, "{jobs} workers");
            }
            // A file that shrank after its length was taken: every worker takes what it
            // holds, the same.
            for got in taken(&path, bytes.len() as u64 + 3 * PART_BYTES, jobs) {
                assert!(got.unwrap() == bytes, "{jobs} workers, shrunk");
            }
            // One that grew: no worker reads beyond the length.
            for got in taken(&path, PART_BYTES * 2 + 5, jobs) {
                assert!(got.unwrap()[..] == bytes[..(PART_BYTES * 2 + 5) as usize]);
            }
        }
        std::fs::remove_file(&path).unwrap();
    }
}
