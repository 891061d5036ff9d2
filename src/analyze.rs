//! `throttlewatch analyze FILE...`: read trace files into one pipeline, in the order given (as
//! one capture split into files), and build the report. A file that cannot be opened, or ends
//! in the middle of a record, is reported with its error; everything read before the error is
//! kept and the remaining files are still read.

use std::path::PathBuf;

use crate::capture::{CaptureError, TraceFile};
use crate::classify::{Catalogue, Classifier};
use crate::config::PipelineConfig;
use crate::pipeline::{Analysis, Pipeline};
use crate::report::InputReport;

/// What `analyze` needs.
#[derive(Debug)]
pub struct AnalyzeInput {
    pub files: Vec<PathBuf>,
    pub config: PipelineConfig,
    pub catalogue: Catalogue,
}

/// The analysis, the inputs as the report shows them, and the errors met on the way.
#[derive(Debug)]
pub struct AnalyzeOutput {
    pub analysis: Analysis,
    pub inputs: Vec<InputReport>,
    pub errors: Vec<CaptureError>,
}

pub fn run(input: AnalyzeInput) -> AnalyzeOutput {
    let mut pipeline = Pipeline::new(input.config, Classifier::new(input.catalogue));
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
                let link = file.link();
                report.format = Some(file.format().to_string());
                report.link_type = Some(link.name().to_string());
                let before = pipeline.stats().packets;
                let result = file.for_each_packet(|ts, frame, wire_len| {
                    pipeline.process(link, ts, frame, wire_len)
                });
                report.packets = pipeline.stats().packets - before;
                if let Err(e) = result {
                    report.error = Some(e.to_string());
                    errors.push(e);
                }
            }
        }
        inputs.push(report);
    }
    AnalyzeOutput { analysis: pipeline.finish(), inputs, errors }
}
