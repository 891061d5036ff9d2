//! `analyze -j N`: the packets of a trace measured by N worker threads, each with its own
//! pipeline, with the same report, verdicts and JSON lines as one pipeline gives (the
//! equivalence test in `tests/cli.rs` compares them byte for byte on every lab sample and
//! corpus capture).
//!
//! The reader (the caller's thread) finds each packet's flow (a plain TCP packet's key read at
//! fixed offsets, anything else decoded) and hands it, in batches, to the worker that owns
//! the flow; every worker sees its packets in the order of the trace. What ties flows together is kept as one pipeline keeps it:
//! - TCP flows are spread by [`FlowKey::shard`], a hash of the direction-free key. Every UDP
//!   flow goes to worker 0: UDP flows teach each other their service (a call's legs share
//!   sockets, ICE fragments and STUN addresses; QUIC Initials wait in one table), so they
//!   stay in one classifier. TCP flows learn only from DNS answers, which every worker is
//!   given at their place in the trace.
//! - Idle flows are checked for at the same packet times in every worker: the reader keeps
//!   the run's clock (of every packet read, as one pipeline keeps it) and tells all workers
//!   when to check.
//! - Flow ids are the order of creation over the whole run: each worker says at which packet
//!   it created each flow, and the reader numbers them in that order at each window's end.
//! - The table's peak is the most flows held by all workers at once: flows are only removed
//!   at the checks and the windows' ends, which all workers share, so the peak is the largest
//!   sum of the workers' open flows just before one of them.
//!
//! Limits: each worker has the whole `--max-flows` and `--detail-flows` (memory up to N
//! times one pipeline's): whenever one pipeline never fills its table or its detail pool, the
//! results are the same; when it does, the workers evict, refuse and deny detail to fewer
//! flows than it would. With more than 64 IPv4 datagrams in fragments at once, a worker's
//! fragment cache (which sees only its own flows) may attribute a later fragment that one
//! pipeline's would have lost. A DNS answer teaches every worker even when its own flow was
//! refused by a full table.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use crate::classify::{Catalogue, Classifier};
use crate::config::PipelineConfig;
use crate::decode::{self, AddrWords, Decoded, FragmentCache, IPPROTO_TCP, LinkType, Transport};
use crate::flow::{Endpoint, FlowKey, Proto};
use crate::pipeline::{Analysis, EXPIRY_INTERVAL_US, FinishedFlow, Pipeline, sort_by_id};
use crate::time::Timestamp;

/// Packets handed to a worker at once: one hand-over per batch, not per packet.
const BATCH_PACKETS: usize = 1024;
/// Batches waiting for each worker: the reader runs at most this far ahead.
const QUEUED_BATCHES: usize = 4;
/// The worker that measures every UDP flow (module docs).
const UDP_WORKER: usize = 0;

/// What a worker is told, in the trace's order. Packet and DNS payload bytes follow one
/// another in the batch's buffer.
#[derive(Debug, Clone, Copy)]
enum Item {
    /// A packet to measure; `seq` numbers the packets of the run.
    Packet { seq: u64, link: LinkType, ts: Timestamp, wire_len: u32, captured: u32 },
    /// The payload of a DNS answer that another worker measures.
    Dns { ts: Timestamp, captured: u32 },
    /// Check for idle flows at this packet time.
    Expire(Timestamp),
    /// A window ends: reply with its snapshot (and, to stream them, the finished flows).
    Cut { end: Timestamp, drain: bool },
    /// Reply whether any packet decoded.
    Ask,
}

#[derive(Debug, Default)]
struct Batch {
    items: Vec<Item>,
    bytes: Vec<u8>,
}

/// A worker's answer to a [`Item::Cut`], or what it leaves at the end of the input.
#[derive(Debug, Default)]
struct Reply {
    /// The window's snapshot flows, and the finished flows it drained.
    flows: Vec<FinishedFlow>,
    drained: Vec<FinishedFlow>,
    /// The packet (`seq`) that created each of its flows since the last reply, in order.
    created: Vec<u64>,
    /// Its open flows just before each check for idle flows since the last reply, and just
    /// before this cut (or the end).
    open: Vec<usize>,
    /// Whether a packet decoded (its pipeline's `first_at` is set).
    decoded: bool,
}

/// The reader's side of one worker.
struct Worker {
    queue: Option<SyncSender<Batch>>,
    empties: Receiver<Batch>,
    replies: Receiver<Reply>,
    batch: Batch,
    thread: Option<JoinHandle<(Analysis, Reply)>>,
}

impl Worker {
    fn push(&mut self, item: Item, bytes: &[u8]) {
        self.batch.items.push(item);
        self.batch.bytes.extend_from_slice(bytes);
        if self.batch.items.len() >= BATCH_PACKETS {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let empty = self.empties.try_recv().unwrap_or_default();
        let batch = std::mem::replace(&mut self.batch, empty);
        // A worker that is gone has panicked: joining it (`reply`, `end`) says so.
        if let Some(queue) = &self.queue {
            let _ = queue.send(batch);
        }
    }

    fn reply(&mut self) -> Reply {
        match self.replies.recv() {
            Ok(reply) => reply,
            Err(_) => self.end().1,
        }
    }

    /// Wait for the worker to finish; a worker's panic is the caller's.
    fn end(&mut self) -> (Analysis, Reply) {
        self.queue = None;
        let thread = self.thread.take().expect("a worker is ended once");
        match thread.join() {
            Ok(end) => end,
            Err(panic) => std::panic::resume_unwind(panic),
        }
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

/// The reader and its workers.
pub struct Shards {
    workers: Vec<Worker>,
    catalogue: Catalogue,
    fragments: FragmentCache,
    /// Packets read.
    packets: u64,
    /// The latest time of a packet or a window's end, and the next check for idle flows (as
    /// one pipeline keeps them).
    clock: Timestamp,
    next_expiry: Timestamp,
    /// A packet decoded (known once the reader decoded one or asked).
    decoded: bool,
    ids: FlowIds,
    peak: usize,
}

impl Shards {
    /// Start `jobs` workers, each with a pipeline of `config`.
    pub fn new(jobs: usize, config: PipelineConfig, catalogue: Catalogue) -> Shards {
        let workers = (0..jobs)
            .map(|i| {
                let (queue, batches) = sync_channel(QUEUED_BATCHES);
                let (give_back, empties) = sync_channel(QUEUED_BATCHES);
                let (answer, replies) = sync_channel(1);
                let pipeline = Pipeline::new(config, Classifier::new(catalogue.clone()));
                let thread = std::thread::Builder::new()
                    .name(format!("analyze-{i}"))
                    .spawn(move || work(pipeline, batches, give_back, answer))
                    .expect("the system starts a thread");
                Worker {
                    queue: Some(queue),
                    empties,
                    replies,
                    batch: Batch::default(),
                    thread: Some(thread),
                }
            })
            .collect();
        Shards {
            workers,
            catalogue,
            fragments: FragmentCache::default(),
            packets: 0,
            clock: Timestamp::default(),
            next_expiry: Timestamp::default(),
            decoded: false,
            ids: FlowIds { per_worker: vec![0; jobs], ..FlowIds::default() },
            peak: 0,
        }
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Whether any packet decoded (one pipeline's `first_at` is set): the reader knows of
    /// those it decoded itself; otherwise the workers are asked.
    pub fn decoded(&mut self) -> bool {
        if !self.decoded {
            for w in &mut self.workers {
                w.push(Item::Ask, &[]);
                w.flush();
            }
            self.decoded =
                self.workers.iter_mut().map(|w| w.reply().decoded).fold(false, |a, b| a | b);
        }
        self.decoded
    }

    pub fn clock(&self) -> Timestamp {
        self.clock
    }

    /// Hand one captured frame to the worker of its flow (a frame that does not decode to
    /// the worker of UDP, which counts it as one pipeline would).
    pub fn process(&mut self, link: LinkType, ts: Timestamp, frame: &[u8], wire_len: u32) {
        self.packets += 1;
        self.clock = self.clock.max(ts);
        if self.clock >= self.next_expiry {
            self.next_expiry = self.clock.add_micros(EXPIRY_INTERVAL_US);
            for w in &mut self.workers {
                w.push(Item::Expire(self.clock), &[]);
            }
        }
        let owner = match plain_tcp(link, frame) {
            Some(key) => key.shard(self.workers.len()),
            None => self.decoded_owner(link, ts, frame, wire_len),
        };
        let item =
            Item::Packet { seq: self.packets, link, ts, wire_len, captured: frame.len() as u32 };
        self.workers[owner].push(item, frame);
    }

    /// The owner of a packet the fast path does not read: decoded in full (which also
    /// keeps the reader's fragment cache as one pipeline's), and a DNS answer given to
    /// every other worker.
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
        self.decoded = true;
        let owner = owner(&packet, self.workers.len());
        if let Transport::Udp(u) = packet.transport
            && u.src_port == 53
        {
            let item = Item::Dns { ts, captured: u.payload.len() as u32 };
            for (_, w) in self.workers.iter_mut().enumerate().filter(|(i, _)| *i != owner) {
                w.push(item, u.payload);
            }
        }
        owner
    }

    /// A window ends at `end`: the flows to judge in it, by id, and (with `drain`) the flows
    /// that finished, by id, which the workers no longer hold.
    pub fn cut(&mut self, end: Timestamp, drain: bool) -> (Vec<FinishedFlow>, Vec<FinishedFlow>) {
        self.clock = self.clock.max(end);
        for w in &mut self.workers {
            w.push(Item::Cut { end, drain }, &[]);
            w.flush();
        }
        let mut replies: Vec<Reply> = self.workers.iter_mut().map(Worker::reply).collect();
        self.count(&replies);
        let (mut flows, mut drained) = (Vec::new(), Vec::new());
        for (w, reply) in replies.iter_mut().enumerate() {
            self.ids.rename(w, &mut reply.flows, false);
            self.ids.rename(w, &mut reply.drained, true);
            flows.append(&mut reply.flows);
            drained.append(&mut reply.drained);
        }
        sort_by_id(&mut flows);
        sort_by_id(&mut drained);
        (flows, drained)
    }

    /// Number the new flows and follow the peak.
    fn count(&mut self, replies: &[Reply]) {
        let created: Vec<&[u64]> = replies.iter().map(|r| r.created.as_slice()).collect();
        self.ids.number(&created);
        let checks = replies.iter().map(|r| r.open.len()).min().unwrap_or(0);
        for i in 0..checks {
            self.peak = self.peak.max(replies.iter().map(|r| r.open[i]).sum());
        }
    }

    /// End of input: the workers' analyses as one.
    pub fn finish(mut self) -> Analysis {
        for w in &mut self.workers {
            w.flush();
        }
        let ends: Vec<(Analysis, Reply)> = self.workers.iter_mut().map(Worker::end).collect();
        let (mut parts, replies): (Vec<Analysis>, Vec<Reply>) = ends.into_iter().unzip();
        self.count(&replies);
        for (w, part) in parts.iter_mut().enumerate() {
            self.ids.rename(w, &mut part.flows, true);
        }
        let mut parts = parts.into_iter();
        let mut all = parts.next().expect("at least one worker");
        for part in parts {
            all.flows.extend(part.flows);
            let (s, p) = (&mut all.stats, &part.stats);
            s.packets += p.packets;
            s.measured += p.measured;
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
        all.table.peak = self.peak;
        sort_by_id(&mut all.flows);
        all
    }
}

fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The key of a TCP packet in an untagged Ethernet frame, IPv4 without fragmentation or IPv6
/// without extension headers: most packets, read at fixed offsets without decoding them (the
/// reader would otherwise decode every packet twice over, its own and its worker's; decoding
/// costs the reader as much as half of what a worker spends on a packet). Anything else
/// (`None`) is decoded in full. A frame that does not decode as TCP after all is counted by
/// whichever worker gets it.
#[inline]
fn plain_tcp(link: LinkType, frame: &[u8]) -> Option<FlowKey> {
    const ETHERNET: usize = 14;
    if link != LinkType::Ethernet {
        return None;
    }
    let ports = |at: usize| {
        let p = frame.get(at..at + 4)?;
        Some((u16::from_be_bytes([p[0], p[1]]), u16::from_be_bytes([p[2], p[3]])))
    };
    let key = match frame.get(12..14)? {
        [0x08, 0x00] => {
            let ip = frame.get(ETHERNET..ETHERNET + 20)?;
            // Version 4, protocol TCP, no fragment (more-fragments flag and offset clear).
            if ip[0] >> 4 != 4 || ip[9] != IPPROTO_TCP || ip[6] & 0x3f != 0 || ip[7] != 0 {
                return None;
            }
            let (sport, dport) = ports(ETHERNET + usize::from(ip[0] & 0x0f) * 4)?;
            let addr = |at: usize| AddrWords::v4([ip[at], ip[at + 1], ip[at + 2], ip[at + 3]]);
            FlowKey::from_words(Proto::Tcp, false, (addr(12), sport), (addr(16), dport))
        }
        [0x86, 0xdd] => {
            let ip = frame.get(ETHERNET..ETHERNET + 40)?;
            if ip[0] >> 4 != 6 || ip[6] != IPPROTO_TCP {
                return None;
            }
            let (sport, dport) = ports(ETHERNET + 40)?;
            let addr = |at: usize| {
                let mut octets = [0; 16];
                octets.copy_from_slice(&ip[at..at + 16]);
                AddrWords::v6(octets)
            };
            FlowKey::from_words(Proto::Tcp, true, (addr(8), sport), (addr(24), dport))
        }
        _ => return None,
    };
    Some(key.0)
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
            let src = Endpoint::new(e.quoted_src, e.quoted_src_port);
            let dst = Endpoint::new(e.quoted_dst, e.quoted_dst_port);
            FlowKey::oriented(Proto::Tcp, src, dst).0
        }
        _ => return UDP_WORKER,
    };
    key.shard(shards)
}

/// A worker: its pipeline over the items it is given, replying at each window's end.
fn work(
    mut pipeline: Pipeline,
    batches: Receiver<Batch>,
    give_back: SyncSender<Batch>,
    replies: SyncSender<Reply>,
) -> (Analysis, Reply) {
    pipeline.expire_externally();
    let mut reply = Reply::default();
    for mut batch in batches {
        let mut at = 0;
        for item in batch.items.drain(..) {
            match item {
                Item::Packet { seq, link, ts, wire_len, captured } => {
                    let frame = &batch.bytes[at..at + captured as usize];
                    at += captured as usize;
                    let before = pipeline.flows_created();
                    super::measure(&mut pipeline, link, ts, frame, wire_len);
                    if pipeline.flows_created() != before {
                        reply.created.push(seq);
                    }
                }
                Item::Dns { ts, captured } => {
                    pipeline.learn_dns(&batch.bytes[at..at + captured as usize], ts);
                    at += captured as usize;
                }
                Item::Expire(now) => {
                    reply.open.push(pipeline.open_flows());
                    pipeline.expire(now);
                }
                Item::Ask => {
                    let decoded = pipeline.stats().first_at.is_some();
                    let _ = replies.send(Reply { decoded, ..Reply::default() });
                }
                Item::Cut { end, drain } => {
                    reply.open.push(pipeline.open_flows());
                    reply.flows = pipeline.snapshot(end).flows;
                    if drain {
                        reply.drained = pipeline.drain_finished().collect();
                    }
                    // The reader waits for this reply before it sends more.
                    let _ = replies.send(std::mem::take(&mut reply));
                }
            }
        }
        batch.bytes.clear();
        let _ = give_back.try_send(batch);
    }
    reply.open.push(pipeline.open_flows());
    (pipeline.finish(), reply)
}
