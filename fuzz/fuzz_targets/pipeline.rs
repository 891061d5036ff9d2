//! A little trace: records of [link selector][time step, 2 bytes][frame length, 2 bytes][frame]
//! fed through the whole pipeline (decode, a small flow table that must evict, measurements,
//! the built-in catalogue's classifier), the detectors (1-s windows) and both report formats.
//! Nothing may panic, and every packet must be measured or counted as skipped.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use throttlewatch::classify::{Catalogue, CatalogueFile, Classifier};
use throttlewatch::config::{DetectConfig, PipelineConfig};
use throttlewatch::detect::{Window, WindowGrid, evaluate_window};
use throttlewatch::decode::LinkType;
use throttlewatch::pipeline::Pipeline;
use throttlewatch::report::{Report, human};
use throttlewatch::time::Timestamp;

fn catalogue() -> Catalogue {
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    CATALOGUE.get_or_init(Catalogue::builtin).clone()
}

fuzz_target!(|data: &[u8]| {
    let config = PipelineConfig { max_flows: 8, detail_flows: 4, ..PipelineConfig::default() };
    let mut pipeline = Pipeline::new(config, Classifier::new(catalogue()));
    let mut rest = data;
    let mut now = 1_700_000_000_000_000u64;
    let mut fed = 0u64;
    let detect = DetectConfig { window_s: 1, ..DetectConfig::default() };
    let mut grid = WindowGrid::new(detect.window_s, None);
    let mut verdicts = Vec::new();
    let mut evaluate = |pipeline: &mut Pipeline, window: Window| {
        let snapshot = pipeline.snapshot(window.end);
        let flows: Vec<_> = snapshot.flows.iter().collect();
        verdicts.extend(evaluate_window(&flows, window, pipeline.catalogue(), &detect, None));
    };
    while rest.len() >= 5 {
        let link = LinkType::ALL[usize::from(rest[0]) % LinkType::ALL.len()];
        let step = u16::from_le_bytes([rest[1], rest[2]]);
        let len = usize::from(u16::from_le_bytes([rest[3], rest[4]])).min(rest.len() - 5);
        // Steps above 60000 go back in time: capture clocks do.
        now = if step > 60_000 { now.saturating_sub(u64::from(step) * 1000) } else { now + u64::from(step) * 1000 };
        let frame = &rest[5..5 + len];
        let ts = Timestamp::from_micros(now);
        if let Some(window) = grid.due(ts) {
            evaluate(&mut pipeline, window);
        }
        pipeline.process(link, Timestamp::from_micros(now), frame, len as u32);
        fed += 1;
        rest = &rest[5 + len..];
    }
    let s = pipeline.stats().clone();
    assert_eq!(s.packets, fed);
    assert!(s.skipped.total() <= s.packets, "more packets skipped than read");
    if let Some(window) = grid.last(pipeline.clock()) {
        evaluate(&mut pipeline, window);
    }
    let analysis = pipeline.finish();
    let report = Report::build(&analysis, Vec::new(), verdicts);
    let mut out = Vec::new();
    report.write_json(&mut out).unwrap();
    human::write(&report, true, &mut out).unwrap();
});
