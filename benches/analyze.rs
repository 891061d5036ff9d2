//! Criterion benches of the analyze pipeline on a trace held in memory (so that file I/O does
//! not blur the figures), and of the whole `analyze` run from the file.
//!
//! The trace is `samples/lab/police-128k.pcap`, or the file named by `THROTTLEWATCH_BENCH_TRACE`
//! (e.g. the large lab trace `lab/lab.py bench` writes). Report results as ratios; the
//! README's instruction counts come from `benches/compare.sh` (callgrind), not from here.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use throttlewatch::analyze::{AnalyzeInput, run};
use throttlewatch::capture::TraceFile;
use throttlewatch::classify::{Catalogue, CatalogueFile, Classifier};
use throttlewatch::config::PipelineConfig;
use throttlewatch::decode::{FragmentCache, LinkType, decode};
use throttlewatch::pipeline::Pipeline;
use throttlewatch::time::Timestamp;

struct Trace {
    path: PathBuf,
    link: LinkType,
    packets: Vec<(Timestamp, Vec<u8>, u32)>,
}

fn trace() -> Trace {
    let path =
        std::env::var_os("THROTTLEWATCH_BENCH_TRACE").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples/lab/police-128k.pcap")
        });
    let mut file = TraceFile::open(&path).expect("bench trace opens");
    let link = file.link();
    let mut packets = Vec::new();
    file.for_each_packet(|_, ts, frame, len| packets.push((ts, frame.to_vec(), len)))
        .expect("bench trace reads");
    Trace { path, link, packets }
}

fn benches(c: &mut Criterion) {
    let t = trace();
    let catalogue = Catalogue::builtin();
    let mut group = c.benchmark_group("analyze");
    group.throughput(Throughput::Elements(t.packets.len() as u64));
    group.bench_function("decode", |b| {
        b.iter(|| {
            let mut fragments = FragmentCache::default();
            for (ts, frame, len) in &t.packets {
                let _ = black_box(decode(t.link, *ts, frame, *len, &mut fragments));
            }
        })
    });
    group.bench_function("pipeline", |b| {
        b.iter(|| {
            let mut p =
                Pipeline::new(PipelineConfig::default(), Classifier::new(catalogue.clone()));
            for (ts, frame, len) in &t.packets {
                p.process(t.link, *ts, frame, *len);
            }
            black_box(p.finish())
        })
    });
    group.bench_function("analyze_file", |b| {
        b.iter(|| {
            black_box(run(AnalyzeInput {
                files: vec![t.path.clone()],
                config: PipelineConfig::default(),
                catalogue: catalogue.clone(),
                detect: throttlewatch::config::DetectConfig::default(),
                window_origin: None,
                history: None,
                progress: false,
                jobs: 1,
            }))
        })
    });
    group.finish();
}

criterion_group!(name = analyze; config = Criterion::default().sample_size(20); targets = benches);
criterion_main!(analyze);
