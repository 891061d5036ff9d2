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
//! With `jobs` above 1 the packets of files are measured by that many threads, which share the
//! reading of every file and each parse all of it (`shard.rs`, cargo feature `jobs`), with the
//! same results; standard input and pipes, which cannot be read that way, by one pipeline.

#[cfg(feature = "jobs")]
mod shard;

use std::path::PathBuf;

use crate::capture::{CaptureError, TraceFile};
use crate::classify::Role;
use crate::classify::{Catalogue, Classifier};
use crate::config::{DetectConfig, PipelineConfig};
use crate::detect::history::History;
use crate::detect::{Recent, Verdict, Window, WindowGrid, evaluate_window};
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

/// The detectors over each window as it closes, and the sink that streams the results.
struct Judge<'s> {
    detect: DetectConfig,
    history: Option<History>,
    /// The attempts of the latest windows (blocking), from one window to the next.
    recent: Recent,
    verdicts: Vec<Verdict>,
    sink: Option<(&'s mut dyn Sink, Streamed)>,
}

impl Judge<'_> {
    /// Whether the flows that finished go out at each window's end (streaming).
    fn drains(&self) -> bool {
        self.sink.is_some()
    }

    /// A window's end: `flows` to judge in it, and (streaming) the finished flows `done`,
    /// both by id.
    fn window(
        &mut self,
        window: Window,
        flows: &[FinishedFlow],
        done: &[FinishedFlow],
        catalogue: &Catalogue,
    ) {
        let flows: Vec<_> = flows.iter().collect();
        let verdicts = evaluate_window(
            &flows,
            window,
            catalogue,
            &self.detect,
            self.history.as_mut(),
            &mut self.recent,
        );
        let Some((sink, streamed)) = &mut self.sink else {
            self.verdicts.extend(verdicts);
            return;
        };
        sink.verdicts(&verdicts);
        self.verdicts.extend(verdicts);
        for f in done {
            streamed.keep(f);
            sink.flow(f, catalogue);
        }
    }

    fn output(
        self,
        analysis: Analysis,
        inputs: Vec<InputReport>,
        errors: Vec<CaptureError>,
    ) -> AnalyzeOutput {
        AnalyzeOutput {
            analysis,
            verdicts: self.verdicts,
            history: self.history,
            inputs,
            errors,
            streamed: self.sink.map(|(_, streamed)| streamed),
        }
    }

    /// Cut a window on one pipeline and judge it.
    fn cut(&mut self, pipeline: &mut Pipeline, window: Window) {
        let flows = pipeline.snapshot(window.end).flows;
        let mut done: Vec<FinishedFlow> =
            if self.drains() { pipeline.drain_finished().collect() } else { Vec::new() };
        sort_by_id(&mut done);
        self.window(window, &flows, &done, pipeline.catalogue());
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
    let progress = input.progress.then(|| Progress::new(&input.files));
    let grid = WindowGrid::new(input.detect.window_s, input.window_origin);
    let mut judge = Judge {
        detect: input.detect,
        history: input.history,
        recent: Recent::default(),
        verdicts: Vec::new(),
        sink: sink.map(|s| (s, streamed())),
    };
    // Standard input and pipes cannot be read by every worker: one pipeline reads them.
    #[cfg(feature = "jobs")]
    if input.jobs >= 2
        && let Some(files) = shard::open_shared(&input.files, input.jobs)
    {
        let (analysis, inputs, errors) = shard::run(
            input.jobs,
            files,
            input.config,
            &input.catalogue,
            grid,
            progress,
            &mut judge,
        );
        return judge.output(analysis, inputs, errors);
    }
    let pipeline = Pipeline::new(input.config, Classifier::new(input.catalogue));
    let (analysis, inputs, errors) = one(&input.files, pipeline, grid, progress, &mut judge);
    judge.output(analysis, inputs, errors)
}

/// The inputs read into one pipeline on this thread. (Not inlined: its loop is compiled the
/// same whatever else `run_with` holds.)
#[inline(never)]
fn one(
    files: &[PathBuf],
    mut pipeline: Pipeline,
    mut grid: WindowGrid,
    mut progress: Option<Progress>,
    judge: &mut Judge<'_>,
) -> (Analysis, Vec<InputReport>, Vec<CaptureError>) {
    let mut inputs = Vec::with_capacity(files.len());
    let mut errors = Vec::new();
    for path in files {
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
                let before = pipeline.stats().packets;
                // Inlined into the readers' loops: as a call, each packet paid for saving and
                // restoring the registers the closure uses.
                let result = file.for_each_packet(
                    #[inline(always)]
                    |link, ts, frame, wire_len| {
                        if let Some(window) = grid.due(ts) {
                            judge.cut(&mut pipeline, window);
                        }
                        pipeline.process(link, ts, frame, wire_len);
                        if let Some(p) = &mut progress {
                            p.packet(frame.len(), Some(&pipeline));
                        }
                    },
                );
                report.packets = pipeline.stats().packets - before;
                if let Err(e) = result {
                    report.error = Some(e.to_string());
                    errors.push(e);
                }
            }
        }
        inputs.push(report);
    }
    if pipeline.stats().first_at.is_some()
        && let Some(last) = grid.last(pipeline.clock())
    {
        judge.cut(&mut pipeline, last);
    }
    if let Some(p) = &progress {
        p.done();
    }
    (pipeline.finish(), inputs, errors)
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

    /// A packet of `captured` bytes read; `open`: the pipeline whose open flows to show.
    fn packet(&mut self, captured: usize, open: Option<&Pipeline>) {
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
        let open = open.map(|p| format!(", {} flows open", p.open_flows())).unwrap_or_default();
        eprint!("\r{} packets ({rate:.0}/s){open}{left}\x1b[K", self.packets);
    }

    fn done(&self) {
        if self.last != self.started {
            eprint!("\r\x1b[K");
        }
    }
}
