//! Helpers shared by the integration tests.
//!
//! Optional resources (the nDPI corpus in `../shared/corpus`, tshark, root, packaging and
//! browser tools) are used when present. The test files that need them run on libtest-mimic
//! ([`run_trials`], `harness = false` in Cargo.toml): a test returns [`Missing`] when its
//! resource is absent and is reported `ignored` with the reason in the runner's own summary,
//! unless `THROTTLEWATCH_REQUIRE_ALL=1` is set (CI sets it), in which case it fails.

#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Completion, Trial};
use throttlewatch::analyze::{AnalyzeInput, AnalyzeOutput, run};
use throttlewatch::classify::{Catalogue, CatalogueFile};
use throttlewatch::config::PipelineConfig;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn required() -> bool {
    std::env::var("THROTTLEWATCH_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

/// Why a test did not run: the resource it needs (named, with how to get it) is missing.
#[derive(Debug)]
pub struct Missing(pub String);

/// What a test run by [`run_trials`] returns: `Err` when it could not run for a missing
/// resource (checks that fail panic, as in any test).
pub type Ran = Result<(), Missing>;

/// A test of a file run by [`run_trials`]: its name and its function.
pub type Test = (&'static str, fn() -> Ran);

/// `Ok` when the resource is `present`, else it is missing.
pub fn need(present: bool, what: impl Into<String>) -> Ran {
    if present { Ok(()) } else { Err(Missing(what.into())) }
}

/// Run a test file's tests (`name`, function) with libtest-mimic's command line (filters,
/// `--list`, `--test-threads`, ... as libtest). A test that returns [`Missing`] is reported
/// `ignored (skipped, missing: ...)`, or failed under `THROTTLEWATCH_REQUIRE_ALL=1`.
pub fn run_trials(tests: &[Test]) -> ExitCode {
    let trials = tests
        .iter()
        .map(|&(name, test)| {
            Trial::ignorable_test(name, move || match test() {
                Ok(()) => Ok(Completion::Completed),
                Err(Missing(what)) if required() => {
                    Err(format!("required resource missing: {what} (THROTTLEWATCH_REQUIRE_ALL=1)")
                        .into())
                }
                Err(Missing(what)) => {
                    Ok(Completion::ignored_with(format!("skipped, missing: {what}")))
                }
            })
        })
        .collect();
    libtest_mimic::run(&Arguments::from_args(), trials).exit_code()
}

/// The [`Test`] list [`run_trials`] takes, from the functions' names.
#[allow(unused_macros)] // files on the standard harness include this module too
macro_rules! trials {
    ($($test:ident),* $(,)?) => {
        &[$((stringify!($test), $test as fn() -> common::Ran)),*]
    };
}
#[allow(unused_imports)]
pub(crate) use trials;

/// The nDPI corpus directory (`THROTTLEWATCH_CORPUS`, default `../shared/corpus/ndpi`).
pub fn corpus_dir() -> Result<PathBuf, Missing> {
    let dir = std::env::var_os("THROTTLEWATCH_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/corpus/ndpi"));
    if dir.join("FLOWS.tsv").is_file() {
        Ok(dir)
    } else {
        Err(Missing(format!("the nDPI corpus at {} (set THROTTLEWATCH_CORPUS)", dir.display())))
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

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
    })
}

/// Whether a program of this name is on the PATH.
pub fn tool(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
}

/// Whether `program` runs with the given arguments (e.g. `--version`) and exits 0.
pub fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// tshark, which the corpus tests compare with.
pub fn tshark() -> Ran {
    need(runs("tshark", &["--version"]), "tshark (apt-get install tshark)")
}

/// Run tshark on a file and return its tab-separated field rows.
pub fn tshark_fields(file: &Path, filter: Option<&str>, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(file);
    cmd.args([
        "-o",
        "ip.defragment:FALSE",
        "-o",
        "ipv6.defragment:FALSE",
        "-T",
        "fields",
        "-E",
        "separator=/t",
    ]);
    if let Some(f) = filter {
        cmd.args(["-Y", f]);
    }
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark runs");
    assert!(
        out.status.success(),
        "tshark failed on {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
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
        detect: throttlewatch::config::DetectConfig::default(),
        window_origin: None,
        history: None,
        progress: false,
        jobs: 1,
    })
}

/// `analyze` of `trace` with 1, 2 and 3 threads (`-j`) gives the same bytes in every format
/// and the same exit status: JSON with the default and with 5-s windows, JSON lines written
/// window by window, and the human report listing every flow.
pub fn same_with_every_jobs(trace: &Path, services: Option<&Path>) {
    let formats: [&[&str]; 4] = [
        &["--format", "json"],
        &["--format", "json", "--window", "5"],
        &["--format", "jsonl", "--window", "5"],
        &["--format", "human", "--window", "5", "--all"],
    ];
    for format in formats {
        let run = |jobs: &str| {
            let mut command = Command::new(binary());
            command.args(["analyze", "-j", jobs]).args(format);
            if let Some(services) = services {
                command.arg("--services").arg(services);
            }
            let out = command.arg(trace).output().expect("the binary runs");
            (out.status.code(), out.stdout)
        };
        let one = run("1");
        assert!(!one.1.is_empty(), "{}: no report", trace.display());
        for jobs in ["2", "3"] {
            let many = run(jobs);
            assert!(
                many == one,
                "{} {format:?}: -j {jobs} differs from -j 1 (status {:?}, {:?})",
                trace.display(),
                many.0,
                one.0
            );
        }
    }
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

/// Frames and trace files built by hand, for tests that need exact packets.
pub mod synth {
    use std::net::Ipv4Addr;
    use std::path::Path;

    /// IPv4 + UDP with the given payload (checksums zero: nothing here checks them).
    pub fn ipv4_udp(
        src: Ipv4Addr,
        dst: Ipv4Addr,
        sport: u16,
        dport: u16,
        ttl: u8,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut p = ipv4_header(src, dst, 17, ttl, 8 + payload.len());
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(payload);
        p
    }

    /// IPv4 + TCP without options.
    #[allow(clippy::too_many_arguments)]
    pub fn ipv4_tcp(
        src: Ipv4Addr,
        dst: Ipv4Addr,
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut p = ipv4_header(src, dst, 6, 64, 20 + payload.len());
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ack.to_be_bytes());
        p.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        p.extend_from_slice(payload);
        p
    }

    /// IPv6 + UDP with the given payload (checksum zero).
    pub fn ipv6_udp(
        src: std::net::Ipv6Addr,
        dst: std::net::Ipv6Addr,
        sport: u16,
        dport: u16,
        payload: &[u8],
    ) -> Vec<u8> {
        let len = (8 + payload.len()) as u16;
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&len.to_be_bytes());
        p.extend_from_slice(&[17, 64]);
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&len.to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(payload);
        p
    }

    fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, ttl: u8, l4_len: usize) -> Vec<u8> {
        let mut h = vec![0x45, 0];
        h.extend_from_slice(&((20 + l4_len) as u16).to_be_bytes());
        h.extend_from_slice(&[0x12, 0x34, 0x40, 0, ttl, proto, 0, 0]);
        h.extend_from_slice(&src.octets());
        h.extend_from_slice(&dst.octets());
        h
    }

    /// Wrap an IP packet in Ethernet (the ethertype from its version), optionally behind
    /// VLAN tags.
    pub fn ethernet(ip: &[u8], vlans: &[u16]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
        for v in vlans {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&v.to_be_bytes());
        }
        let v6 = ip.first().is_some_and(|b| b >> 4 == 6);
        f.extend_from_slice(if v6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
        f.extend_from_slice(ip);
        f
    }

    /// Wrap an IPv4 packet in a PPPoE session frame.
    pub fn pppoe(ip: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x88, 0x64, 0x11, 0x00, 0x00, 0x07];
        f.extend_from_slice(&((ip.len() + 2) as u16).to_be_bytes());
        f.extend_from_slice(&[0x00, 0x21]);
        f.extend_from_slice(ip);
        f
    }

    /// Wrap an IPv4 packet in a Linux cooked v2 header.
    pub fn sll2(ip: &[u8]) -> Vec<u8> {
        let mut f = vec![0x08, 0x00, 0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
        f.extend_from_slice(ip);
        f
    }

    /// A classic pcap file (microsecond timestamps): (time in µs, frame).
    pub fn write_pcap(path: &Path, linktype: u32, frames: &[(u64, Vec<u8>)]) {
        let mut out = Vec::new();
        out.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&65535u32.to_le_bytes());
        out.extend_from_slice(&linktype.to_le_bytes());
        for (ts, frame) in frames {
            out.extend_from_slice(&((ts / 1_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&((ts % 1_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            out.extend_from_slice(frame);
        }
        std::fs::write(path, out).unwrap();
    }

    /// A pcapng file: section header, one interface, enhanced packet blocks (µs resolution).
    pub fn write_pcapng(path: &Path, linktype: u16, frames: &[(u64, Vec<u8>)]) {
        fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
            let len = (12 + body.len()).div_ceil(4) * 4;
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&(len as u32).to_le_bytes());
            out.extend_from_slice(body);
            out.resize(out.len() + len - 12 - body.len(), 0);
            out.extend_from_slice(&(len as u32).to_le_bytes());
        }
        let mut out = Vec::new();
        let mut shb = 0x1a2b3c4du32.to_le_bytes().to_vec();
        shb.extend_from_slice(&[1, 0, 0, 0]);
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        block(&mut out, 0x0a0d0d0a, &shb);
        let mut idb = linktype.to_le_bytes().to_vec();
        idb.extend_from_slice(&[0, 0]);
        idb.extend_from_slice(&0u32.to_le_bytes());
        block(&mut out, 1, &idb);
        for (ts, frame) in frames {
            let mut epb = 0u32.to_le_bytes().to_vec();
            epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
            epb.extend_from_slice(&(*ts as u32).to_le_bytes());
            epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            epb.extend_from_slice(frame);
            epb.resize(epb.len().div_ceil(4) * 4, 0);
            block(&mut out, 6, &epb);
        }
        std::fs::write(path, out).unwrap();
    }

    /// A scratch directory unique to the calling test.
    pub fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("throttlewatch-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}

/// Headless Chromium kept off every network (no host name resolves, nothing fetched in the
/// background), its profile in `profile`: the caller adds its own flags and the page.
pub fn offline_chromium(profile: &Path) -> Command {
    let mut chromium = Command::new("chromium");
    chromium
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND",
        ])
        .arg(format!("--user-data-dir={}", profile.display()));
    chromium
}

/// Wait for `child` (a browser writing its log to `log`) at most two minutes; kill it and
/// fail the test, naming the log, past that.
pub fn finish_within_two_minutes(child: &mut Child, log: &Path) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the browser did not finish within 120 s (log: {})", log.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
