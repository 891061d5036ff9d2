//! `throttlewatch analyze FILE...`: read trace files (`-`: standard input) into one pipeline, in the order given (as
//! one capture split into files), cut windows on packet time as the daemon does, evaluate each
//! as it closes, and build the report. A file that cannot be opened, or ends in the middle of a
//! record, is reported with its error; everything read before the error is kept and the
//! remaining files are still read.
//!
//! Streaming ([`run_streaming`], `--format jsonl`): after each window is judged, its verdicts
//! and the flows that finished in it go to a [`Sink`] and are dropped, so memory holds the
//! flow table and the window in progress, not the trace; kept are counts ([`Tally`]), a
//! light copy of the messenger's UDP flows, which the calls are made of, and the start of
//! each messenger TCP flow (32 bytes: a call may fall back to TCP). A streamed flow is
//! classified with what was known when it was written (the whole-trace report also gives
//! a finished flow what was learned later in the trace).
//!
//! With `jobs` above 1 the packets are measured by that many threads (`shard.rs`, cargo
//! feature `jobs`), with the same results.

#[cfg(feature = "jobs")]
mod shard;

use std::path::PathBuf;

use crate::capture::{CaptureError, TraceFile};
use crate::classify::Role;
use crate::classify::{Catalogue, Classifier};
use crate::config::{DetectConfig, PipelineConfig};
use crate::decode::LinkType;
use crate::detect::history::History;
use crate::detect::{Verdict, WindowGrid, evaluate_window};
use crate::flow::Proto;
use crate::pipeline::{Analysis, FinishedFlow, Pipeline, sort_by_id};
use crate::report::calls::TcpStart;
use crate::report::{InputReport, Tally};
use crate::time::Timestamp;

/// What `analyze` needs.
#[derive(Debug)]
pub struct AnalyzeInput {
    pub files: Vec<PathBuf>,
    pub config: PipelineConfig,
    pub catalogue: Catalogue,
    pub detect: DetectConfig,
    /// Where the window grid starts (a daemon's first window, to compare with it); default:
    /// the first packet.
    pub window_origin: Option<Timestamp>,
    /// The per-hour baseline, updated with every window's transfers.
    pub history: Option<History>,
    /// A progress line on standard error, rewritten about once a second.
    pub progress: bool,
    /// Threads that measure the packets (a build without the `jobs` feature uses one).
    pub jobs: usize,
}

/// Where a streaming analysis hands what it no longer holds.
pub trait Sink {
    /// A flow, once the window it finished in has been judged (or at the end of the input).
    fn flow(&mut self, flow: &FinishedFlow, catalogue: &Catalogue);
    /// A window's verdicts, as it closes.
    fn verdicts(&mut self, verdicts: &[Verdict]);
}

/// What a streaming analysis kept of the flows it handed to its sink.
#[derive(Debug)]
pub struct Streamed {
    pub tally: Tally,
    /// The messenger's UDP flows (the legs of calls), without their bins and loss logs.
    pub legs: Vec<FinishedFlow>,
    /// When each of the messenger's TCP flows started (a call may fall back to TCP).
    pub tcp_starts: Vec<TcpStart>,
}

/// The analysis, the verdicts, the inputs as the report shows them, and the errors met on
/// the way.
#[derive(Debug)]
pub struct AnalyzeOutput {
    pub analysis: Analysis,
    pub verdicts: Vec<Verdict>,
    pub history: Option<History>,
    pub inputs: Vec<InputReport>,
    pub errors: Vec<CaptureError>,
    /// With a sink: what was written out (`analysis.flows` holds the flows still open at
    /// the end, not yet written).
    pub streamed: Option<Streamed>,
}

/// What measures the packets: one pipeline, or workers with a pipeline each.
enum Packets {
    One(Box<Pipeline>),
    #[cfg(feature = "jobs")]
    Shards(Box<shard::Shards>),
}

impl Packets {
    fn process(&mut self, link: LinkType, ts: Timestamp, frame: &[u8], wire_len: u32) {
        match self {
            Packets::One(p) => measure(p, link, ts, frame, wire_len),
            #[cfg(feature = "jobs")]
            Packets::Shards(s) => s.process(link, ts, frame, wire_len),
        }
    }

    fn packets(&self) -> u64 {
        match self {
            Packets::One(p) => p.stats().packets,
            #[cfg(feature = "jobs")]
            Packets::Shards(s) => s.packets(),
        }
    }

    fn decoded(&mut self) -> bool {
        match self {
            Packets::One(p) => p.stats().first_at.is_some(),
            #[cfg(feature = "jobs")]
            Packets::Shards(s) => s.decoded(),
        }
    }

    fn clock(&self) -> Timestamp {
        match self {
            Packets::One(p) => p.clock(),
            #[cfg(feature = "jobs")]
            Packets::Shards(s) => s.clock(),
        }
    }

    fn catalogue(&self) -> &Catalogue {
        match self {
            Packets::One(p) => p.catalogue(),
            #[cfg(feature = "jobs")]
            Packets::Shards(s) => s.catalogue(),
        }
    }

    /// Flows open now, where one pipeline holds them.
    fn open_flows(&self) -> Option<usize> {
        match self {
            Packets::One(p) => Some(p.open_flows()),
            #[cfg(feature = "jobs")]
            Packets::Shards(_) => None,
        }
    }

    /// A window's end: its flows by id, and (with `drain`) the finished flows to write out,
    /// by id.
    fn cut(&mut self, end: Timestamp, drain: bool) -> (Vec<FinishedFlow>, Vec<FinishedFlow>) {
        match self {
            Packets::One(p) => {
                let flows = p.snapshot(end).flows;
                let mut done: Vec<FinishedFlow> =
                    if drain { p.drain_finished().collect() } else { Vec::new() };
                sort_by_id(&mut done);
                (flows, done)
            }
            #[cfg(feature = "jobs")]
            Packets::Shards(s) => s.cut(end, drain),
        }
    }

    fn finish(self) -> Analysis {
        match self {
            Packets::One(p) => p.finish(),
            #[cfg(feature = "jobs")]
            Packets::Shards(s) => (*s).finish(),
        }
    }
}

/// One packet into a pipeline: the single thread and the workers share this one copy of
/// the per-packet path (inlined at each call site it would be in the binary twice).
#[inline(never)]
fn measure(pipeline: &mut Pipeline, link: LinkType, ts: Timestamp, frame: &[u8], wire_len: u32) {
    pipeline.process(link, ts, frame, wire_len);
}

/// The packets' measurement, the window grid and the detectors over a stream of packets.
struct Windowed<'s> {
    packets: Packets,
    grid: WindowGrid,
    detect: DetectConfig,
    history: Option<History>,
    verdicts: Vec<Verdict>,
    sink: Option<(&'s mut dyn Sink, Streamed)>,
}

impl Windowed<'_> {
    fn cut(&mut self, window: crate::detect::Window) {
        let (flows, done) = self.packets.cut(window.end, self.sink.is_some());
        let flows: Vec<_> = flows.iter().collect();
        let verdicts = evaluate_window(
            &flows,
            window,
            self.packets.catalogue(),
            &self.detect,
            self.history.as_mut(),
        );
        let Some((sink, streamed)) = &mut self.sink else {
            self.verdicts.extend(verdicts);
            return;
        };
        sink.verdicts(&verdicts);
        self.verdicts.extend(verdicts);
        for f in &done {
            streamed.keep(f);
            sink.flow(f, self.packets.catalogue());
        }
    }
}

impl Streamed {
    /// What a streaming analysis keeps of a flow it writes out.
    pub fn keep(&mut self, f: &FinishedFlow) {
        self.tally.add(f);
        if f.role != Role::Target {
            return;
        }
        if f.proto == Proto::Udp {
            // Field by field: the bins, loss log and prior a clone would copy are not wanted.
            self.legs.push(FinishedFlow {
                id: f.id,
                proto: f.proto,
                client: f.client,
                server: f.server,
                client_by: f.client_by,
                first_at: f.first_at,
                last_at: f.last_at,
                measures: f.measures.clone(),
                bins: None,
                rtt_recent: f.rtt_recent,
                losses: None,
                class: f.class,
                call_host: f.call_host,
                role: f.role,
                end: f.end,
                prior: None,
            });
        }
        self.tcp_starts.extend(TcpStart::of(f));
    }
}

/// Analyze the inputs; the report is built from the output.
pub fn run(input: AnalyzeInput) -> AnalyzeOutput {
    run_with(input, None)
}

/// Analyze the inputs, handing flows and verdicts to `sink` as windows close (module docs);
/// the flows still open at the end are in `analysis.flows`, for the caller to write.
pub fn run_streaming(input: AnalyzeInput, sink: &mut dyn Sink) -> AnalyzeOutput {
    run_with(input, Some(sink))
}

fn run_with(input: AnalyzeInput, sink: Option<&mut dyn Sink>) -> AnalyzeOutput {
    let services = input.catalogue.services().len();
    let streamed =
        || Streamed { tally: Tally::new(services), legs: Vec::new(), tcp_starts: Vec::new() };
    let mut progress = input.progress.then(|| Progress::new(&input.files));
    let packets = match input.jobs {
        #[cfg(feature = "jobs")]
        jobs @ 2.. => {
            Packets::Shards(Box::new(shard::Shards::new(jobs, input.config, input.catalogue)))
        }
        _ => Packets::One(Box::new(Pipeline::new(input.config, Classifier::new(input.catalogue)))),
    };
    let mut w = Windowed {
        packets,
        grid: WindowGrid::new(input.detect.window_s, input.window_origin),
        detect: input.detect,
        history: input.history,
        verdicts: Vec::new(),
        sink: sink.map(|s| (s, streamed())),
    };
    let mut inputs = Vec::with_capacity(input.files.len());
    let mut errors = Vec::new();
    for path in &input.files {
        let mut report = InputReport {
            path: path.display().to_string(),
            format: None,
            link_type: None,
            packets: 0,
            error: None,
        };
        match TraceFile::open(path) {
            Err(e) => {
                report.error = Some(e.to_string());
                errors.push(e);
            }
            Ok(mut file) => {
                report.format = Some(file.format().to_string());
                report.link_type = Some(file.link().name().to_string());
                let before = w.packets.packets();
                let result = file.for_each_packet(|link, ts, frame, wire_len| {
                    if let Some(window) = w.grid.due(ts) {
                        w.cut(window);
                    }
                    w.packets.process(link, ts, frame, wire_len);
                    if let Some(p) = &mut progress {
                        p.packet(frame.len(), &w.packets);
                    }
                });
                report.packets = w.packets.packets() - before;
                if let Err(e) = result {
                    report.error = Some(e.to_string());
                    errors.push(e);
                }
            }
        }
        inputs.push(report);
    }
    if w.packets.decoded()
        && let Some(last) = w.grid.last(w.packets.clock())
    {
        w.cut(last);
    }
    if let Some(p) = &progress {
        p.done();
    }
    AnalyzeOutput {
        analysis: w.packets.finish(),
        verdicts: w.verdicts,
        history: w.history,
        inputs,
        errors,
        streamed: w.sink.map(|(_, streamed)| streamed),
    }
}

/// The progress line: packets, their rate, open flows and, from the files' sizes, how much
/// is left. Rewritten in place (`\r`) about once a second; erased at the end.
struct Progress {
    started: std::time::Instant,
    last: std::time::Instant,
    /// Bytes of all the inputs, when all are files of a known size.
    total_bytes: Option<u64>,
    /// Bytes of the records read so far (a record header of 16 bytes each, as pcap's).
    read_bytes: u64,
    packets: u64,
}

impl Progress {
    /// Check the clock every this many packets.
    const EVERY_PACKETS: u64 = 1 << 14;

    fn new(files: &[PathBuf]) -> Progress {
        let sizes: Option<Vec<u64>> =
            files.iter().map(|f| std::fs::metadata(f).ok().map(|m| m.len())).collect();
        let now = std::time::Instant::now();
        Progress {
            started: now,
            last: now,
            total_bytes: sizes.map(|s| s.iter().sum()),
            read_bytes: 0,
            packets: 0,
        }
    }

    fn packet(&mut self, captured: usize, packets: &Packets) {
        self.packets += 1;
        self.read_bytes += captured as u64 + 16;
        if !self.packets.is_multiple_of(Self::EVERY_PACKETS) || self.last.elapsed().as_secs() < 1 {
            return;
        }
        self.last = std::time::Instant::now();
        let secs = self.started.elapsed().as_secs_f64();
        let rate = self.packets as f64 / secs;
        let left = match self.total_bytes {
            Some(total) if total > 0 => {
                let done = (self.read_bytes as f64 / total as f64).min(1.0);
                let eta = secs * (1.0 - done) / done.max(1e-9);
                format!(", {:.0} % read, about {eta:.0} s left", done * 100.0)
            }
            _ => String::new(),
        };
        let open = packets.open_flows().map(|n| format!(", {n} flows open")).unwrap_or_default();
        eprint!("\r{} packets ({rate:.0}/s){open}{left}\x1b[K", self.packets);
    }

    fn done(&self) {
        if self.last != self.started {
            eprint!("\r\x1b[K");
        }
    }
}
