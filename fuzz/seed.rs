//! Seed inputs for the fuzz targets from real captures: every frame becomes a `decode` input
//! (link selector + frame), the first frames of each capture one `pipeline` input, and its
//! first 64 KiB one `trace` input (the file as it is).
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --bin seed -- ../shared/corpus/ndpi/*.pcap*
//!
//! Writes into fuzz/corpus/{decode,pipeline,trace}/ (not committed: the captures are not ours).

use std::path::{Path, PathBuf};

use throttlewatch::capture::TraceFile;
use throttlewatch::decode::LinkType;

/// The targets pick the link type as `LinkType::ALL[selector % 6]`.
fn selector(link: LinkType) -> u8 {
    LinkType::ALL.iter().position(|l| *l == link).expect("every link type is in ALL") as u8
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let (decode_dir, pipeline_dir) = (root.join("decode"), root.join("pipeline"));
    let trace_dir = root.join("trace");
    std::fs::create_dir_all(&trace_dir).unwrap();
    std::fs::create_dir_all(&decode_dir).unwrap();
    std::fs::create_dir_all(&pipeline_dir).unwrap();
    let files: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if files.is_empty() {
        eprintln!("usage: seed CAPTURE...");
        std::process::exit(2);
    }
    let (mut frames, mut traces) = (0, 0);
    for path in &files {
        let mut file = match TraceFile::open(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("skipping {e}");
                continue;
            }
        };
        let sel = selector(file.link());
        let stem = path.file_name().unwrap().to_string_lossy().replace('.', "_");
        let bytes = std::fs::read(path).unwrap();
        std::fs::write(trace_dir.join(&stem), &bytes[..bytes.len().min(64 * 1024)]).unwrap();
        let mut trace = Vec::new();
        let mut last = None;
        let mut n = 0;
        let _ = file.for_each_packet(|_, ts, frame, _| {
            let mut input = vec![sel];
            input.extend_from_slice(frame);
            std::fs::write(decode_dir.join(format!("{stem}-{n}")), &input).unwrap();
            if n < 64 && frame.len() <= usize::from(u16::MAX) {
                let step_ms = last.map_or(0, |l: u64| (ts.micros().saturating_sub(l) / 1000).min(60_000));
                trace.push(sel);
                trace.extend_from_slice(&(step_ms as u16).to_le_bytes());
                trace.extend_from_slice(&(frame.len() as u16).to_le_bytes());
                trace.extend_from_slice(frame);
                last = Some(ts.micros());
            }
            n += 1;
        });
        std::fs::write(pipeline_dir.join(&stem), &trace).unwrap();
        frames += n;
        traces += 1;
    }
    println!("wrote {frames} decode seeds and {traces} pipeline seeds under {}", root.display());
}
