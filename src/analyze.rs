//! `throttlewatch analyze FILE...`: read trace files (`-`: standard input) into one pipeline, in the order given (as
//! one capture split into files), cut windows on packet time as the daemon does, evaluate each
//! as it closes, and build the report. A file that cannot be opened, or ends in the middle of a
//! record, is reported with its error; everything read before the error is kept and the
//! remaining files are still read.

use std::path::PathBuf;

use crate::capture::{CaptureError, TraceFile};
use crate::classify::{Catalogue, Classifier};
use crate::config::{DetectConfig, PipelineConfig};
use crate::detect::history::History;
use crate::detect::{Verdict, WindowGrid, evaluate_window};
use crate::pipeline::{Analysis, Pipeline};
use crate::report::InputReport;
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
}

/// The pipeline, the window grid and the detectors over a stream of packets.
struct Windowed {
    pipeline: Pipeline,
    grid: WindowGrid,
    detect: DetectConfig,
    history: Option<History>,
    verdicts: Vec<Verdict>,
}

impl Windowed {
    fn cut(&mut self, window: crate::detect::Window) {
        let snapshot = self.pipeline.snapshot(window.end);
        let flows: Vec<_> = snapshot.flows.iter().collect();
        self.verdicts.extend(evaluate_window(
            &flows,
            window,
            self.pipeline.catalogue(),
            &self.detect,
            self.history.as_mut(),
        ));
    }
}

pub fn run(input: AnalyzeInput) -> AnalyzeOutput {
    let mut w = Windowed {
        pipeline: Pipeline::new(input.config, Classifier::new(input.catalogue)),
        grid: WindowGrid::new(input.detect.window_s, input.window_origin),
        detect: input.detect,
        history: input.history,
        verdicts: Vec::new(),
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
                let before = w.pipeline.stats().packets;
                let result = file.for_each_packet(|link, ts, frame, wire_len| {
                    if let Some(window) = w.grid.due(ts) {
                        w.cut(window);
                    }
                    w.pipeline.process(link, ts, frame, wire_len);
                });
                report.packets = w.pipeline.stats().packets - before;
                if let Err(e) = result {
                    report.error = Some(e.to_string());
                    errors.push(e);
                }
            }
        }
        inputs.push(report);
    }
    if w.pipeline.stats().first_at.is_some()
        && let Some(last) = w.grid.last(w.pipeline.clock())
    {
        w.cut(last);
    }
    AnalyzeOutput {
        analysis: w.pipeline.finish(),
        verdicts: w.verdicts,
        history: w.history,
        inputs,
        errors,
    }
}
