//! The `throttlewatch` binary as a user meets it: exit codes, messages that name what was
//! wrong, the JSON contract, and reports that keep what was read before an error.

mod common;

use std::io::Read;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::synth;
use serde_json::Value;

fn sample() -> PathBuf {
    common::root().join("samples/lab/rst-midflow.pcap")
}

fn lab_services() -> PathBuf {
    common::root().join("samples/lab-services.toml")
}

fn throttlewatch(args: &[&str]) -> Output {
    Command::new(common::binary()).args(args).output().expect("the binary runs")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout))
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn json_report_follows_the_contract() {
    let out = throttlewatch(&[
        "analyze",
        "--format",
        "json",
        "--services",
        s(&lab_services()),
        s(&sample()),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = json(&out);
    assert_eq!(r["schema"], "throttlewatch.report/1");
    // The middlebox's resets, as the verdict contract (docs/report.md) has them.
    let verdicts = r["verdicts"].as_array().unwrap();
    let reset = verdicts.iter().find(|v| v["finding"] == "reset").expect("a reset verdict");
    for key in ["service", "window", "finding", "mechanism", "confidence", "evidence", "flows"] {
        assert!(reset.get(key).is_some(), "verdict lacks {key}");
    }
    assert_eq!(reset["service"], "msg");
    assert_eq!(reset["mechanism"], "rst_injection");
    assert!(reset["window"]["start"].is_string() && reset["window"]["end"].is_string());
    assert!(!reset["flows"].as_array().unwrap().is_empty());
    assert!(reset["summary"].as_str().unwrap().starts_with("msg: "));
    let summary = &r["summary"];
    assert_eq!(summary["inputs"][0]["format"], "pcap");
    assert_eq!(summary["inputs"][0]["link_type"], "ethernet");
    assert_eq!(summary["catalogue"]["services"], 1);
    let p = &summary["packets"];
    assert_eq!(
        p["read"].as_u64().unwrap(),
        p["measured"].as_u64().unwrap() + p["skipped"].as_u64().unwrap()
    );
    let flows = r["flows"].as_array().unwrap();
    assert!(flows.len() >= 6);
    for f in flows {
        for key in [
            "id",
            "proto",
            "client",
            "server",
            "service",
            "role",
            "bytes_up",
            "bytes_down",
            "start",
            "end",
        ] {
            assert!(f.get(key).is_some(), "flow {} lacks {key}", f["id"]);
        }
        assert!(["tcp", "udp"].contains(&f["proto"].as_str().unwrap()));
        assert!(["target", "control", "other"].contains(&f["role"].as_str().unwrap()));
    }
    // The lab's messenger call (rst-midflow leaves calls alone): STUN keepalives answered, no
    // RTP loss either way.
    let call = flows.iter().find(|f| f["server"] == "198.51.100.10:3478").expect("the call flow");
    assert_eq!(call["service"], "msg");
    assert_eq!(call["role"], "target");
    let stun = &call["udp"]["stun"];
    assert!(stun["answered"].as_u64().unwrap() >= 2, "{stun}");
    assert_eq!(stun["answered"], stun["requests"]);
    assert_eq!(call["udp"]["down"]["rtp"]["lost"], 0);
    assert_eq!(call["udp"]["up"]["rtp"]["lost"], 0);
    // The middlebox resets the messenger's downloads once 40 kB have come down.
    let resets: Vec<&Value> = flows
        .iter()
        .filter(|f| f["server"] == "198.51.100.10:443" && f["end_reason"] == "rst")
        .collect();
    assert!(resets.len() >= 2, "{} reset flows", resets.len());
    for f in resets {
        assert!(f["tcp"]["down"]["rsts"].as_u64().unwrap() >= 1);
        assert!(f["bytes_down"].as_u64().unwrap() > 40_000);
    }
    // The lab's delay line adds 40 ms towards the messenger and 30 ms towards the control.
    let ext = |server: &str| {
        let f = flows.iter().find(|f| f["server"] == server).unwrap();
        f["tcp"]["handshake"]["external_rtt_us"].as_u64().unwrap()
    };
    assert!((40_000..45_000).contains(&ext("198.51.100.10:443")), "{}", ext("198.51.100.10:443"));
    assert!((30_000..35_000).contains(&ext("203.0.113.10:443")), "{}", ext("203.0.113.10:443"));
}

#[test]
fn human_report_lists_messenger_flows() {
    let out = throttlewatch(&["analyze", "--services", s(&lab_services()), s(&sample())]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("MESSENGER FLOWS (9)"), "{text}");
    assert!(text.contains("198.51.100.10:3478"), "{text}");
    assert!(text.contains("RST from server"), "{text}");
    // The answer first, in words, with what to do next; then the tables, each explained.
    assert!(text.find("ANSWER").unwrap() < text.find("MESSENGER FLOWS").unwrap(), "{text}");
    assert!(text.contains("  msg: CONNECTIONS RESET (rst_injection), confidence"), "{text}");
    assert!(text.contains("    next: keep this trace as evidence"), "{text}");
    assert!(text.contains("RESENT: segments"), "{text}");
    assert!(text.contains("RTT OUT p50, RTT IN p50: median round trip"), "{text}");
    let long: Vec<&str> = text.lines().filter(|l| l.chars().count() > 100).collect();
    assert!(long.is_empty(), "lines over 100 columns: {long:#?}");
    // Control flows are not listed without --all.
    assert!(!text.contains("203.0.113.10:443"), "{text}");
    let all = throttlewatch(&["analyze", "--all", "--services", s(&lab_services()), s(&sample())]);
    let all = String::from_utf8(all.stdout).unwrap();
    assert!(all.contains("203.0.113.10:443"), "{all}");
    assert!(all.contains("BY: how the service was recognised"), "{all}");
    // A clean trace: no sign of interference, and no confidence beside it.
    let clean = common::root().join("samples/lab/clean.pcap");
    let out = throttlewatch(&["analyze", "--services", s(&lab_services()), s(&clean)]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("  msg: no sign of interference\n"), "{text}");
    assert!(!text.contains("confidence") && !text.contains("next:"), "{text}");
}

/// The README's quick start shows the beginning of the report of its command: it is what the
/// command prints.
#[test]
fn readme_quick_start_shows_what_the_command_prints() {
    let readme = std::fs::read_to_string(common::root().join("README.md")).unwrap();
    let (_, after) = readme.split_once("It begins with the answer:\n\n```\n").unwrap();
    let (shown, _) = after.split_once("```").unwrap();
    let out = Command::new(common::binary())
        .current_dir(common::root())
        .args([
            "analyze",
            "--services",
            "samples/lab-whatsapp.toml",
            "samples/lab/police-128k.pcap",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(shown), "the README shows\n{shown}\nthe command prints\n{text}");
}

#[test]
fn truncated_file_reports_what_was_read_and_names_the_packet() {
    let dir = synth::scratch("truncated");
    let bytes = std::fs::read(sample()).unwrap();
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() * 6 / 10]).unwrap();
    let out = throttlewatch(&["analyze", "--format", "json", s(&cut)]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("cut.pcap: packet "), "{err}");
    assert!(err.contains("truncated"), "{err}");
    let r = json(&out);
    let read = r["summary"]["packets"]["read"].as_u64().unwrap();
    assert!(read > 1000, "the packets before the cut are measured: {read}");
    assert!(
        r["summary"]["inputs"][0]["error"]
            .as_str()
            .unwrap()
            .contains(&format!("packet {}", read + 1))
    );
    assert!(!r["flows"].as_array().unwrap().is_empty());
}

#[test]
fn unreadable_inputs_are_named_and_other_files_still_read() {
    let dir = synth::scratch("unreadable");
    let text = dir.join("notes.pcap");
    std::fs::write(&text, "hello, not a capture\n").unwrap();
    let empty = dir.join("empty.pcapng");
    std::fs::write(&empty, "").unwrap();
    let gz = dir.join("trace.pcap.gz");
    std::fs::write(&gz, [0x1f, 0x8b, 8, 0, 0, 0]).unwrap();
    let missing = dir.join("missing.pcap");
    let out = throttlewatch(&[
        "analyze",
        "--format",
        "json",
        s(&text),
        s(&empty),
        s(&gz),
        s(&missing),
        s(&sample()),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("notes.pcap: not a pcap or pcapng file: it starts with bytes 68 65 6c 6c"),
        "{err}"
    );
    assert!(err.contains("empty.pcapng: empty file"), "{err}");
    assert!(
        err.contains("trace.pcap.gz: not a pcap or pcapng file") && err.contains("gzip"),
        "{err}"
    );
    assert!(err.contains("missing.pcap: cannot open"), "{err}");
    let r = json(&out);
    assert_eq!(r["summary"]["inputs"].as_array().unwrap().len(), 5);
    assert!(r["summary"]["packets"]["read"].as_u64().unwrap() > 2000, "the good file was read");
}

#[test]
fn unsupported_link_type_is_named() {
    let dir = synth::scratch("linktype");
    let wifi = dir.join("wifi.pcap");
    synth::write_pcap(&wifi, 105, &[(1, vec![0; 40])]);
    let out = throttlewatch(&["analyze", s(&wifi)]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("wifi.pcap: link type 105 (IEEE802_11) is not supported; supported: ethernet"),
        "{err}"
    );
}

#[test]
fn services_file_errors_name_the_file_and_key() {
    let dir = synth::scratch("services");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[[service]]\nid = \"msg\"\nname = \"M\"\nranges = [\"198.51.100.300/32\"]\n",
    )
    .unwrap();
    let out = throttlewatch(&["analyze", "--services", s(&bad), s(&sample())]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("bad.toml: service #1 ('msg'): ranges: '198.51.100.300/32' is not an IPv4 or IPv6 prefix"), "{err}");
    assert!(out.stdout.is_empty(), "no report from a bad configuration");
    let syntax = dir.join("syntax.toml");
    std::fs::write(&syntax, "[[service]\nid = 1\n").unwrap();
    let out = throttlewatch(&["analyze", "--services", s(&syntax), s(&sample())]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("syntax.toml:"), "{}", stderr(&out));
    let out = throttlewatch(&["analyze", "--services", s(&dir.join("nope.toml")), s(&sample())]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("nope.toml: cannot read the service catalogue"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_flags_exit_2_with_the_legal_range() {
    let out = throttlewatch(&["analyze", "--max-flows", "0", s(&sample())]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("--max-flows") && err.contains("1..="), "{err}");
    let out = throttlewatch(&["analyze", "--format", "yaml", s(&sample())]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("possible values: human, json"), "{}", stderr(&out));
    let out = throttlewatch(&["analyze"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(throttlewatch(&["--version"]).status.code(), Some(0));
    assert_eq!(throttlewatch(&["analyze", "--help"]).status.code(), Some(0));
}

#[test]
fn fail_on_finding_without_findings_exits_0() {
    let out = throttlewatch(&["analyze", "--fail-on-finding", "--format", "json", s(&sample())]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn fail_on_finding_exits_3_on_a_finding_and_0_on_a_clean_trace() {
    let clean = common::root().join("samples/lab/clean.pcap");
    let args = |f: &Path| {
        ["analyze", "--fail-on-finding", "--services", s(&lab_services()), s(f)].map(str::to_string)
    };
    let out = Command::new(common::binary()).args(args(&sample())).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let out = Command::new(common::binary()).args(args(&clean)).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no sign of interference"));
}

#[test]
fn detector_configuration_and_history() {
    let dir = synth::scratch("detect-config");
    // A window shorter than the trace gives more than one window of verdicts.
    let out = throttlewatch(&[
        "analyze",
        "--format",
        "json",
        "--window",
        "3",
        "--services",
        s(&lab_services()),
        s(&sample()),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let starts: std::collections::BTreeSet<String> = json(&out)["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["window"]["start"].as_str().unwrap().to_string())
        .collect();
    assert!(starts.len() >= 2, "{starts:?}");
    // The shipped sample configuration parses; a stricter threshold changes the outcome.
    let sample_config = common::root().join("samples/throttlewatch.toml");
    let out = throttlewatch(&[
        "analyze",
        "--config",
        s(&sample_config),
        "--services",
        s(&lab_services()),
        s(&sample()),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let strict = dir.join("strict.toml");
    std::fs::write(&strict, "[detect]\nmin_affected_flows = 50\n").unwrap();
    let out = throttlewatch(&[
        "analyze",
        "--format",
        "json",
        "--config",
        s(&strict),
        "--services",
        s(&lab_services()),
        s(&sample()),
    ]);
    assert!(!json(&out)["verdicts"].as_array().unwrap().iter().any(|v| v["finding"] == "reset"));
    // Bad keys and values are named.
    for (text, message) in [
        ("[detect]\nwindow = 5\n", "unknown field `window`"),
        ("[detect]\nalpha = 2.0\n", "alpha = 2: allowed values are in (0, 1]"),
        ("[detect]\nwindow_s = 0\n", "window_s = 0: allowed values are 1..=86400"),
        ("[daemon]\nfoo = 1\n", "unknown field `foo`"),
        ("[deamon]\n", "unknown field `deamon`"),
        ("[detect]\nrtt_ratio = \"big\"\n", "rtt_ratio"),
    ] {
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, text).unwrap();
        let out = throttlewatch(&["analyze", "--config", s(&bad), s(&sample())]);
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = stderr(&out);
        assert!(err.contains("bad.toml") && err.contains(message), "{text}: {err}");
        assert!(out.stdout.is_empty());
    }
    // The history is created, then read back and shown in the verdicts' evidence.
    let history = dir.join("history.json");
    let _ = std::fs::remove_file(&history);
    let big = common::root().join("samples/lab/police-1500k.pcap");
    for _ in 0..5 {
        let out = throttlewatch(&[
            "analyze",
            "--history",
            s(&history),
            "--services",
            s(&lab_services()),
            s(&big),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&history).unwrap()).unwrap();
    assert_eq!(saved["schema"], "throttlewatch.history/1");
    let out = throttlewatch(&[
        "analyze",
        "--format",
        "json",
        "--history",
        s(&history),
        "--services",
        s(&lab_services()),
        s(&big),
    ]);
    let r = json(&out);
    let with_history =
        r["verdicts"].as_array().unwrap().iter().find(|v| v["evidence"].get("history").is_some());
    let h = &with_history.expect("a verdict with the history")["evidence"]["history"];
    assert!(h["baseline"]["samples"].as_u64().unwrap() >= 5, "{h}");
    std::fs::write(&history, "not json").unwrap();
    let out = throttlewatch(&["analyze", "--history", s(&history), s(&sample())]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a history file"), "{}", stderr(&out));
}

/// A synthetic trace with `flows` UDP flows of two packets each, one every `spacing_us`.
fn many_flows(path: &Path, flows: u32, spacing_us: u64) {
    let frames: Vec<(u64, Vec<u8>)> = (0..flows)
        .flat_map(|i| {
            let client = Ipv4Addr::from(0x0a00_0000 + i);
            let server = Ipv4Addr::new(203, 0, 113, 9);
            let t = 1_700_000_000_000_000 + u64::from(i) * spacing_us;
            [
                (
                    t,
                    synth::ethernet(
                        &synth::ipv4_udp(client, server, 40000, 443, 64, b"hello"),
                        &[],
                    ),
                ),
                (
                    t + 10,
                    synth::ethernet(
                        &synth::ipv4_udp(server, client, 443, 40000, 50, b"world"),
                        &[],
                    ),
                ),
            ]
        })
        .collect();
    synth::write_pcap(path, 1, &frames);
}

/// Issue 14: `-j N` measures each flow on one of N threads and gives what one thread gives,
/// byte for byte, on every lab sample (the corpus's captures: tests/corpus.rs).
#[test]
fn jobs_give_the_same_results_on_every_lab_sample() {
    let mut traces: Vec<PathBuf> = std::fs::read_dir(common::root().join("samples/lab"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    traces.sort();
    assert_eq!(traces.len(), 13, "{traces:?}");
    for trace in &traces {
        common::same_with_every_jobs(trace, Some(&lab_services()));
    }
}

/// Issue 14: `-j N` gives what one thread gives on inputs that fail (a truncated and a
/// bit-flipped copy, a text file, a missing one) between whole ones, and on standard input.
#[test]
fn jobs_give_the_same_results_on_broken_inputs_and_standard_input() {
    let dir = synth::scratch("jobs-broken");
    let bytes = std::fs::read(sample()).unwrap();
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() * 6 / 10]).unwrap();
    let flipped = dir.join("flipped.pcap");
    let mut bad = bytes.clone();
    // The second record's captured length beyond the limit (a little-endian pcap).
    let first = u32::from_le_bytes(bytes[32..36].try_into().unwrap()) as usize;
    bad[24 + 16 + first + 8..][..4].copy_from_slice(&[0xff; 4]);
    std::fs::write(&flipped, &bad).unwrap();
    let text = dir.join("notes.pcap");
    std::fs::write(&text, "hello, not a capture\n").unwrap();
    let missing = dir.join("missing.pcap");
    let whole = sample();
    let inputs = [s(&cut), s(&whole), s(&flipped), s(&text), s(&missing), s(&whole)];
    let run = |jobs: &str| {
        let out =
            throttlewatch(&[&["analyze", "-j", jobs, "--format", "json"], &inputs[..]].concat());
        (out.status.code(), out.stdout, out.stderr)
    };
    let one = run("1");
    let err = String::from_utf8_lossy(&one.2).into_owned();
    assert_eq!(one.0, Some(2), "{err}");
    assert!(err.contains("flipped.pcap: packet 2: captured length 4294967295"), "{err}");
    for jobs in ["2", "3"] {
        assert!(run(jobs) == one, "-j {jobs} differs from -j 1");
    }
    let piped = |jobs| {
        let out = analyze_stdin(bytes.clone(), &["-j", jobs]);
        (out.status.code(), out.stdout, out.stderr)
    };
    assert!(piped("2") == piped("1"), "standard input, -j 2");
}

#[test]
fn flow_table_bound_is_reported() {
    let dir = synth::scratch("bound");
    // 20 ms apart, the least recently used of 100 flows has been idle for 2 s when the next
    // one comes: it is evicted (and reported), nothing is refused.
    let steady = dir.join("steady.pcap");
    many_flows(&steady, 1000, 20_000);
    let out = throttlewatch(&["analyze", "--format", "json", "--max-flows", "100", s(&steady)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = json(&out);
    let f = &r["summary"]["flows"];
    assert_eq!((f["max_flows"].as_u64(), f["peak"].as_u64()), (Some(100), Some(100)), "{f}");
    assert_eq!((f["evicted"].as_u64(), f["refused"].as_u64()), (Some(900), Some(0)), "{f}");
    assert_eq!(f["total"], 1000, "evicted flows are reported, not lost");
    assert_eq!(r["summary"]["packets"]["measured"], 2000);
    // A flood, 1 ms apart: within any second only 100 flows fit; the active ones stay, the
    // rest are refused and counted.
    let flood = dir.join("flood.pcap");
    many_flows(&flood, 5000, 1000);
    let r = json(&throttlewatch(&["analyze", "--format", "json", "--max-flows", "100", s(&flood)]));
    let f = &r["summary"]["flows"];
    let admitted = f["total"].as_u64().unwrap();
    assert!((400..=600).contains(&admitted), "about 100 flows a second for 5 s: {f}");
    let measured = r["summary"]["packets"]["measured"].as_u64().unwrap();
    assert_eq!(
        measured + f["refused"].as_u64().unwrap(),
        10_000,
        "every packet measured or refused: {f}"
    );
    assert!(measured >= admitted, "{measured}");
    assert_eq!(r["summary"]["packets"]["skip_reasons"]["flow_table_full"], f["refused"]);
}

#[test]
fn link_types_and_pcapng_files() {
    let dir = synth::scratch("links");
    let (c, srv) = (Ipv4Addr::new(192, 168, 1, 2), Ipv4Addr::new(198, 51, 100, 10));
    let up = synth::ipv4_udp(c, srv, 40000, 3478, 64, b"ping");
    let down = synth::ipv4_udp(srv, c, 3478, 40000, 50, b"pong!");
    type Wrap = Box<dyn Fn(&[u8]) -> Vec<u8>>;
    let cases: Vec<(&str, u32, Wrap)> = vec![
        ("raw.pcap", 101, Box::new(|p: &[u8]| p.to_vec())),
        ("sll2.pcap", 276, Box::new(synth::sll2)),
        ("qinq.pcap", 1, Box::new(|p: &[u8]| synth::ethernet(p, &[100, 200]))),
        ("pppoe.pcap", 1, Box::new(synth::pppoe)),
    ];
    for (name, linktype, wrap) in cases {
        let path = dir.join(name);
        synth::write_pcap(&path, linktype, &[(1_000_000, wrap(&up)), (1_050_000, wrap(&down))]);
        let r = json(&throttlewatch(&[
            "analyze",
            "--format",
            "json",
            "--services",
            s(&lab_services()),
            s(&path),
        ]));
        let f = &r["flows"][0];
        assert_eq!(
            (f["bytes_up"].as_u64(), f["bytes_down"].as_u64()),
            (Some(32), Some(33)),
            "{name}: {f}"
        );
        assert_eq!(f["service"], "msg", "{name}");
        assert_eq!(r["summary"]["packets"]["skipped"], 0, "{name}");
    }
    // A pcapng file named .pcap is recognised by its content.
    let ng = dir.join("really-pcapng.pcap");
    synth::write_pcapng(
        &ng,
        1,
        &[(1_000_000, synth::ethernet(&up, &[])), (1_050_000, synth::ethernet(&down, &[]))],
    );
    let r = json(&throttlewatch(&["analyze", "--format", "json", s(&ng)]));
    assert_eq!(r["summary"]["inputs"][0]["format"], "pcapng");
    assert_eq!(r["flows"][0]["duration_s"], 0.05);
}

#[test]
fn closed_stdout_is_not_an_error() {
    let dir = synth::scratch("pipe");
    let big = dir.join("big.pcap");
    many_flows(&big, 3000, 20_000);
    let mut child = Command::new(common::binary())
        .args(["analyze", "--format", "json", s(&big)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

/// `analyze -` with `bytes` written into a real pipe in small pieces, as `tcpdump -w -` does.
fn analyze_stdin(bytes: Vec<u8>, args: &[&str]) -> Output {
    use std::io::Write;
    let mut child = Command::new(common::binary())
        .args(["analyze", "--format", "json"])
        .args(args)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        for piece in bytes.chunks(1000) {
            stdin.write_all(piece).unwrap();
        }
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Issue 15: `tcpdump -w - | throttlewatch analyze -`: a pcap or pcapng trace on standard
/// input (a pipe, never seekable) reports what the same file does.
#[test]
fn standard_input_is_read_as_a_trace() {
    let dir = synth::scratch("stdin");
    let ng = dir.join("two.pcapng");
    let (c, srv) = (Ipv4Addr::new(192, 168, 1, 2), Ipv4Addr::new(198, 51, 100, 10));
    let frames = [
        (1_000_000, synth::ethernet(&synth::ipv4_udp(c, srv, 40000, 3478, 64, b"ping"), &[])),
        (1_050_000, synth::ethernet(&synth::ipv4_udp(srv, c, 3478, 40000, 50, b"pong!"), &[])),
    ];
    synth::write_pcapng(&ng, 1, &frames);
    let services = lab_services();
    for path in [sample(), ng] {
        let args = ["--services", s(&services)];
        let from_file =
            throttlewatch(&[&["analyze", "--format", "json"], &args[..], &[s(&path)]].concat());
        let from_pipe = analyze_stdin(std::fs::read(&path).unwrap(), &args);
        assert_eq!(from_pipe.status.code(), Some(0), "{}", stderr(&from_pipe));
        let (mut file_report, pipe_report) = (json(&from_file), json(&from_pipe));
        assert_eq!(pipe_report["summary"]["inputs"][0]["path"], "-");
        file_report["summary"]["inputs"][0]["path"] = "-".into();
        assert_eq!(file_report, pipe_report, "{}", path.display());
        assert!(!pipe_report["flows"].as_array().unwrap().is_empty());
    }
    // A stream cut short: the packets before the cut, and the packet named.
    let bytes = std::fs::read(sample()).unwrap();
    let out = analyze_stdin(bytes[..bytes.len() / 2].to_vec(), &[]);
    assert_eq!(out.status.code(), Some(2));
    let read = json(&out)["summary"]["packets"]["read"].as_u64().unwrap();
    assert!(read > 1000, "{read}");
    let err = stderr(&out);
    assert!(err.contains(&format!("standard input: packet {}: ", read + 1)), "{err}");
}

/// A STUN message (RFC 8489 header with the cookie) with `attributes`.
fn stun(message_type: u16, tid: u8, attributes: &[(u16, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (kind, value) in attributes {
        body.extend_from_slice(&kind.to_be_bytes());
        body.extend_from_slice(&(value.len() as u16).to_be_bytes());
        body.extend_from_slice(value);
        body.resize(body.len().div_ceil(4) * 4, 0);
    }
    let mut m = message_type.to_be_bytes().to_vec();
    m.extend_from_slice(&(body.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
    m.extend_from_slice(&[tid; 12]);
    m.extend_from_slice(&body);
    m
}

/// An Opus-like RTP packet (RFC 3550 header, 48 kHz clock, 20 ms frames).
fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 111];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 960).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0x5a; 80]);
    p
}

#[test]
fn peer_to_peer_legs_after_a_stun_exchange_with_the_service_are_one_call() {
    // A WhatsApp call as a LAN capture shows it: the client (192.168.1.10) checks its path
    // to WhatsApp's relay (31.13.64.60, in the catalogue's ranges) from socket 40000 with
    // WhatsApp's STUN attribute 0x4000 and the ICE fragments "wAuF:lOcL"; then media goes
    // peer to peer: from another socket (40002) to a carrier-NAT peer, whose checks carry
    // the same fragments, and from socket 40000 to a public peer. No peer is WhatsApp's.
    let (client, relay) = (Ipv4Addr::new(192, 168, 1, 10), Ipv4Addr::new(31, 13, 64, 60));
    let (cgnat_peer, public_peer) = (Ipv4Addr::new(100, 72, 5, 9), Ipv4Addr::new(203, 0, 113, 77));
    let t0 = 1_700_000_000_000_000u64;
    let mut frames = Vec::new();
    let mut udp = |t: u64, src, dst, sport, dport, payload: &[u8]| {
        frames
            .push((t, synth::ethernet(&synth::ipv4_udp(src, dst, sport, dport, 64, payload), &[])))
    };
    let check = stun(0x0001, 1, &[(0x0006, b"wAuF:lOcL"), (0x4000, &[0, 0, 0, 1])]);
    udp(t0, client, relay, 40000, 3478, &check);
    udp(t0 + 30_000, relay, client, 3478, 40000, &stun(0x0101, 1, &[]));
    let peer_check = stun(0x0001, 2, &[(0x0006, b"lOcL:wAuF")]);
    udp(t0 + 200_000, client, cgnat_peer, 40002, 50000, &peer_check);
    udp(t0 + 240_000, cgnat_peer, client, 50000, 40002, &stun(0x0101, 2, &[]));
    for i in 0..150u16 {
        let t = t0 + 300_000 + u64::from(i) * 20_000;
        udp(t, client, cgnat_peer, 40002, 50000, &rtp(i, 0x1111));
        udp(t + 5_000, cgnat_peer, client, 50000, 40002, &rtp(1000 + i, 0x2222));
        udp(t + 7_000, client, public_peer, 40000, 52000, &rtp(2000 + i, 0x3333));
        udp(t + 9_000, public_peer, client, 52000, 40000, &rtp(3000 + i, 0x4444));
    }
    let dir = synth::scratch("p2p-call");
    let path = dir.join("p2p-call.pcap");
    synth::write_pcap(&path, 1, &frames);
    let out = throttlewatch(&["analyze", "--format", "json", s(&path)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = json(&out);
    let flow = |port: u16, peer: Ipv4Addr| {
        let server = format!("{peer}:{port}");
        r["flows"].as_array().unwrap().iter().find(|f| f["server"] == server).cloned().unwrap()
    };
    let relay_flow = flow(3478, relay);
    assert_eq!(relay_flow["service"], "whatsapp");
    assert_eq!(relay_flow["service_by"], "signature");
    let cgnat = flow(50000, cgnat_peer);
    assert_eq!(cgnat["service"], "whatsapp", "the ICE fragments tie the peer leg to the call");
    assert_eq!(cgnat["service_by"], "call");
    let public = flow(52000, public_peer);
    assert_eq!(public["service"], "whatsapp", "the socket of the relay check");
    assert_eq!(public["service_by"], "endpoint");
    assert_eq!(r["summary"]["learned"]["call_links"], 1);
    let calls = r["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    assert_eq!(call["service"], "whatsapp");
    assert_eq!(call["outcome"], "ok");
    let kinds: Vec<&str> =
        call["legs"].as_array().unwrap().iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["stun", "p2p", "p2p"]);
    assert_eq!(call["media_up"]["packets"], 2 * 150 + 1);
    assert_eq!(call["media_down"]["packets"], 2 * 150 + 1);
    assert_eq!(call["loss_down"], 0.0);
    let setup = call["setup_s"].as_f64().unwrap();
    assert!((setup - 0.2).abs() < 1e-6, "setup {setup}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `-o FILE` writes the report there and nothing to stdout; an existing file is refused
/// before any work and left as it was, unless `--force`; `--force` alone is a usage error; a
/// file that cannot be written whole is named and not left half-written.
#[test]
fn output_file_is_created_refused_or_replaced() {
    let dir = synth::scratch("output");
    let report = dir.join("report.json");
    let _ = std::fs::remove_file(&report);
    let out = throttlewatch(&["analyze", "--format", "json", "-o", s(&report), s(&sample())]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "stdout carries nothing with -o");
    let written: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(written["schema"], "throttlewatch.report/1");

    std::fs::write(&report, "keep me").unwrap();
    let out = throttlewatch(&["analyze", "--output", s(&report), s(&sample())]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("report.json: the report file exists (--force replaces it)"));
    assert_eq!(std::fs::read_to_string(&report).unwrap(), "keep me");

    let out = throttlewatch(&["analyze", "--force", "-o", s(&report), s(&sample())]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(std::fs::read_to_string(&report).unwrap().starts_with("throttlewatch "));

    let out = throttlewatch(&["analyze", "--force", s(&sample())]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("'--force' requires '--output <FILE>'"), "{}", stderr(&out));

    let nowhere = dir.join("no/such/dir/report.txt");
    let out = throttlewatch(&["analyze", "-o", s(&nowhere), s(&sample())]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("report.txt: cannot create the report file"));
    let out = throttlewatch(&["analyze", "--force", "-o", "/dev/full", s(&sample())]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/dev/full: cannot write the report: No space left"));
    assert!(Path::new("/dev/full").exists(), "a device is not removed");
}

/// When no input could be read there is no report, on stdout or in `-o FILE`: only the
/// errors.
#[test]
fn no_report_when_nothing_was_read() {
    let dir = synth::scratch("nothing-read");
    let missing = dir.join("missing.pcap");
    let text = dir.join("notes.pcap");
    std::fs::write(&text, "not a capture\n").unwrap();
    for format in ["human", "json", "html"] {
        let out = throttlewatch(&["analyze", "--format", format, s(&missing), s(&text)]);
        assert_eq!(out.status.code(), Some(2));
        assert!(out.stdout.is_empty(), "{format}: {}", String::from_utf8_lossy(&out.stdout));
        assert!(stderr(&out).contains("missing.pcap: cannot open"), "{}", stderr(&out));
    }
    let report = dir.join("report.txt");
    let _ = std::fs::remove_file(&report);
    let out = throttlewatch(&["analyze", "-o", s(&report), s(&missing)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!report.exists(), "no report file for nothing read");
}

/// `--format jsonl` carries the JSON report line by line: on every lab sample, with windows
/// short enough that flows are written while the trace is read, the same flows, verdicts,
/// calls and summary; flows and verdicts first, then the calls, the summary last.
#[test]
fn jsonl_carries_the_json_report() {
    let mut samples: Vec<PathBuf> = std::fs::read_dir(common::root().join("samples/lab"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    samples.sort();
    assert!(samples.len() >= 13);
    let services = lab_services();
    for pcap in &samples {
        let args = ["--services", s(&services), "--window", "3", s(pcap)];
        let whole = json(&throttlewatch(&[&["analyze", "--format", "json"][..], &args].concat()));
        let out = throttlewatch(&[&["analyze", "--format", "jsonl"][..], &args].concat());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let lines: Vec<Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        let of = |kind: &str| -> Vec<Value> {
            lines.iter().filter(|l| l["type"] == kind).map(|l| l[kind].clone()).collect()
        };
        let mut flows = of("flow");
        flows.sort_by_key(|f| f["id"].as_u64());
        let name = pcap.display();
        assert_eq!(Value::Array(flows), whole["flows"], "{name}: flows");
        assert_eq!(Value::Array(of("verdict")), whole["verdicts"], "{name}: verdicts");
        assert_eq!(Value::Array(of("call")), whole["calls"], "{name}: calls");
        let last = lines.last().unwrap();
        assert_eq!((&last["type"], &last["schema"]), (&"summary".into(), &whole["schema"]));
        assert_eq!(last["summary"], whole["summary"], "{name}: summary");
        let kinds: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
        let first_call = kinds.iter().position(|k| *k == "call").unwrap_or(kinds.len() - 1);
        assert!(kinds[first_call..].iter().all(|k| matches!(*k, "call" | "summary")), "{kinds:?}");
    }
}

/// A pcap of `flows` one-packet UDP flows from distinct clients, `spacing_us` apart, written
/// as it is made (a million flows are 63 MB).
fn flood(path: &Path, flows: u32, spacing_us: u64) {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let header = [
        0xa1b2c3d4u32.to_le_bytes(),
        [2, 0, 4, 0],
        [0; 4],
        [0; 4],
        65535u32.to_le_bytes(),
        1u32.to_le_bytes(),
    ];
    out.write_all(&header.concat()).unwrap();
    let server = Ipv4Addr::new(203, 0, 113, 9);
    for i in 0..flows {
        let ip = synth::ipv4_udp(Ipv4Addr::from(0x0a00_0000 + i), server, 40000, 443, 64, b"hello");
        let frame = synth::ethernet(&ip, &[]);
        let t = 1_700_000_000_000_000 + u64::from(i) * spacing_us;
        for field in
            [(t / 1_000_000) as u32, (t % 1_000_000) as u32, frame.len() as u32, frame.len() as u32]
        {
            out.write_all(&field.to_le_bytes()).unwrap();
        }
        out.write_all(&frame).unwrap();
    }
    out.flush().unwrap();
}

/// `analyze --format jsonl` of a trace: the lines it wrote and its peak resident memory (kB).
// The child is reaped by wait4 (for its own resource usage), which clippy does not see.
#[allow(clippy::zombie_processes)]
fn streamed_peak_rss_kb(pcap: &Path) -> (u64, Value) {
    use std::io::BufRead as _;
    let mut child = Command::new(common::binary())
        .args(["analyze", "--format", "jsonl", "--max-flows", "10000", "--window", "10", s(pcap)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut lines, mut last) = (0u64, String::new());
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        last = line.unwrap();
        lines += 1;
    }
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    #[allow(unsafe_code)]
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child's pid, with pointers to live locals.
    #[allow(unsafe_code)]
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "status {status}");
    let summary: Value = serde_json::from_str(&last).unwrap();
    assert_eq!(summary["type"], "summary");
    let flows = summary["summary"]["flows"]["total"].as_u64().unwrap();
    assert_eq!(lines, flows + 1, "a line per flow, and the summary");
    (usage.ru_maxrss as u64, summary)
}

/// Streaming analysis keeps the flow table and the window in progress, not the trace: a
/// million flows (at most 10,000 open at once, 10,000 per 10-s window) take no more memory
/// than a hundred thousand. (The whole-trace JSON report holds every flow: about 1.3 GB for
/// this trace.)
#[test]
fn streaming_memory_does_not_grow_with_the_flows() {
    let dir = synth::scratch("flood");
    let (small, large) = (dir.join("100k.pcap"), dir.join("1m.pcap"));
    flood(&small, 100_000, 1000);
    flood(&large, 1_000_000, 1000);
    let (small_kb, _) = streamed_peak_rss_kb(&small);
    let (large_kb, summary) = streamed_peak_rss_kb(&large);
    std::fs::remove_dir_all(&dir).unwrap();
    let f = &summary["summary"]["flows"];
    assert_eq!(f["total"], 1_000_000, "{f}");
    assert_eq!(f["peak"], 10_000, "{f}");
    eprintln!("peak RSS: {small_kb} kB for 100,000 flows, {large_kb} kB for 1,000,000");
    assert!(large_kb < small_kb + small_kb / 4 + 8_192, "{large_kb} kB against {small_kb} kB");
}
