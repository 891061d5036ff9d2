//! Helpers shared by the integration tests.
//!
//! Optional resources (the nDPI corpus in `../shared/corpus`, tshark, root) are used when
//! present. When one is missing a test says so loudly on stderr and returns, unless
//! `THROTTLEWATCH_REQUIRE_ALL=1` is set (CI sets it), in which case it fails.

#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;

use throttlewatch::analyze::{AnalyzeInput, AnalyzeOutput, run};
use throttlewatch::classify::Catalogue;
use throttlewatch::config::PipelineConfig;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn required() -> bool {
    std::env::var("THROTTLEWATCH_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

/// Report a missing resource: fail under `THROTTLEWATCH_REQUIRE_ALL=1`, else skip loudly.
pub fn missing(what: &str) {
    if required() {
        panic!("required resource missing: {what} (THROTTLEWATCH_REQUIRE_ALL=1)");
    }
    eprintln!("\n*** SKIPPED: {what} is missing; this test did not run ***\n");
}

/// The nDPI corpus directory, or `None` after reporting it missing.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("THROTTLEWATCH_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/corpus/ndpi"));
    if dir.join("FLOWS.tsv").is_file() {
        Some(dir)
    } else {
        missing(&format!("the nDPI corpus at {} (set THROTTLEWATCH_CORPUS)", dir.display()));
        None
    }
}

/// The capture files of the corpus, sorted.
pub fn corpus_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("corpus directory is readable")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.ends_with(".pcap") || name.ends_with(".pcapng")
        })
        .collect();
    files.sort();
    files
}

pub fn tshark_available() -> bool {
    let ok = Command::new("tshark").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        missing("tshark (apt-get install tshark)");
    }
    ok
}

/// Run tshark on a file and return its tab-separated field rows.
pub fn tshark_fields(file: &Path, filter: Option<&str>, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(file);
    cmd.args(["-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE", "-T", "fields", "-E", "separator=/t"]);
    if let Some(f) = filter {
        cmd.args(["-Y", f]);
    }
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark runs");
    assert!(out.status.success(), "tshark failed on {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// Analyze files with the built-in catalogue (or the given one) and default settings.
pub fn analyze(files: &[PathBuf], catalogue: Option<Catalogue>) -> AnalyzeOutput {
    run(AnalyzeInput {
        files: files.to_vec(),
        config: PipelineConfig::default(),
        catalogue: catalogue.unwrap_or_else(Catalogue::builtin),
    })
}

/// Parse `1.2.3.4:80` or `[2001:db8::1]:80` (as nDPI and tshark print them).
pub fn endpoint(text: &str) -> Option<(IpAddr, u16)> {
    if let Ok(sa) = text.parse::<SocketAddr>() {
        return Some((sa.ip(), sa.port()));
    }
    let (host, port) = text.rsplit_once(':')?;
    Some((host.trim_matches(['[', ']']).parse().ok()?, port.parse().ok()?))
}

/// Path of the throttlewatch binary built for the integration tests.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_throttlewatch"))
}
