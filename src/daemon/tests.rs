//! The daemon without root: a lab trace's frames replayed through the capture thread on a
//! simulated clock ([`TraceReplay`], the [`FrameSource`] a live interface is), into the same
//! main loop, outputs and reload as `throttlewatch run`. Nothing depends on the machine's
//! speed: the clock moves only when the replay has nothing left to hand over. `/metrics` is
//! scraped with a real HTTP client over loopback.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::capture::{FrameSource, Reads, WINDOW_GRACE_US};
use super::outputs::{InterfaceCounters, StopReason};
use super::{Control, Setup, load_catalogue, start};
use crate::analyze::{AnalyzeInput, run as analyze};
use crate::capture::{LiveStats, Stream, TraceFile};
use crate::config::{ConfigSource, DetectConfig, Overrides, PipelineConfig, load};
use crate::decode::LinkType;
use crate::detect::Window;
use crate::time::Timestamp;

/// How far the simulated clock moves while the replay waits (the live wait's bound).
const WAIT_US: u64 = 50_000;

/// A trace's frames handed over as a capture would: each once the clock has reached its
/// timestamp, the clock moving on only when nothing is waiting; with several interfaces, what
/// is waiting at each in turn.
struct TraceReplay {
    link: LinkType,
    /// The interface of each frame (`None`: the only one), its time, bytes and length.
    frames: Vec<(Option<u32>, Timestamp, Vec<u8>, u32)>,
    next: usize,
    clock: Timestamp,
    /// The clock stops here, once every window holding a frame has closed.
    end: Timestamp,
    /// Told when the clock has reached `end`.
    done: Option<mpsc::Sender<()>>,
}

impl TraceReplay {
    fn new(path: &Path, window_s: u64, done: mpsc::Sender<()>) -> TraceReplay {
        TraceReplay::share(path, window_s, (0, 1), false, done)
    }

    /// The frames the kernel's fanout program would hand capture worker `worker` of
    /// `workers`; the clock runs over the whole trace's time. `lan_and_wan`: the trace is
    /// the LAN's of a router that forwards without NAT, and the daemon captures its WAN too,
    /// where every packet shows as well (40 µs later, one hop on).
    fn share(
        path: &Path,
        window_s: u64,
        (worker, workers): (u32, u32),
        lan_and_wan: bool,
        done: mpsc::Sender<()>,
    ) -> TraceReplay {
        let mut trace = TraceFile::open(path).unwrap();
        let mut frames = Vec::new();
        trace
            .for_each_packet(|_, ts, bytes, len| {
                frames.push((lan_and_wan.then_some(0), ts, bytes.to_vec(), len));
                if lan_and_wan {
                    let mut wan = bytes.to_vec();
                    if wan.get(12..14) == Some(&[8, 0]) && wan.len() > 22 {
                        wan[22] = wan[22].saturating_sub(1);
                    }
                    frames.push((Some(1), ts.add_micros(40), wan, len));
                }
            })
            .unwrap();
        frames.sort_by_key(|f| f.1);
        let (first, last) = (frames[0].1, frames[frames.len() - 1].1);
        assert_eq!(trace.link(), LinkType::Ethernet, "the fanout's test frames are Ethernet");
        #[cfg(feature = "jobs")]
        frames
            .retain(|(_, _, bytes, _)| crate::capture::fanout_member_of(bytes, workers) == worker);
        #[cfg(not(feature = "jobs"))]
        assert_eq!((worker, workers), (0, 1), "one capture worker without the feature `jobs`");
        TraceReplay {
            link: trace.link(),
            frames,
            next: 0,
            clock: first,
            end: last.add_micros(window_s * 1_000_000 + WINDOW_GRACE_US),
            done: Some(done),
        }
    }
}

impl FrameSource for TraceReplay {
    fn read(
        &mut self,
        mut frame: impl FnMut(Option<u32>, LinkType, Stream, Timestamp, &[u8], u32),
    ) -> Reads {
        let due = self.frames[self.next..].iter().take_while(|f| f.1 <= self.clock).count();
        let waiting = &self.frames[self.next..self.next + due];
        // Each interface's waiting frames in turn, as the live source polls them.
        for interface in [None, Some(0), Some(1)] {
            for (_, ts, bytes, len) in waiting.iter().filter(|f| f.0 == interface) {
                frame(interface, self.link, Stream::Measured, *ts, bytes, *len);
            }
        }
        self.next += due;
        Reads { frames: due, changes: Vec::new() }
    }

    fn wait(&mut self) {
        if self.clock < self.end {
            self.clock = self.clock.add_micros(WAIT_US).min(self.end);
        } else {
            if let Some(done) = self.done.take() {
                let _ = done.send(());
            }
            // Until the stop: the clock stands still, so no further window closes.
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn now(&self) -> Timestamp {
        self.clock
    }

    fn flush(&mut self, _frame: impl FnMut(Option<u32>, LinkType, Stream, Timestamp, &[u8], u32)) {}

    fn counters(&mut self) -> Vec<InterfaceCounters> {
        vec![InterfaceCounters {
            name: "replay0".into(),
            packets: self.next as u64,
            kernel: LiveStats::default(),
            down: None,
            reopens: 0,
        }]
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).expect("every line is JSON")).collect()
}

/// A GET with a plain TCP client; the whole response.
fn get(addr: SocketAddr, target: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(stream, "GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// Wait (a hang guard, not a measure) until `path` holds an event of type `kind`.
fn wait_for_event(path: &Path, kind: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let has = |text: String| text.lines().any(|l| l.contains(&format!("\"type\":\"{kind}\"")));
    while !has(std::fs::read_to_string(path).unwrap_or_default()) {
        assert!(Instant::now() < deadline, "no {kind} event in {}", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The whole daemon on the police-128k lab trace: its windows are analyze's (the same
/// verdicts, window for window); a bad reload keeps the configuration, a good one takes the
/// live keys and names the restart ones; the outputs agree with each other and `/metrics`
/// serves what the metrics file holds.
#[test]
fn a_replayed_trace_gives_analyze_verdicts_and_reloads_and_serves_metrics() {
    let dir = std::env::temp_dir().join(format!("tw-daemon-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let window_s = 5;
    let services = root().join("samples/lab-services.toml");
    let config = dir.join("throttlewatch.toml");
    let daemon_table = |status: &str, snaplen: u32| {
        format!(
            "[detect]\nwindow_s = {window_s}\n[daemon]\ninterfaces = [\"replay0\"]\n\
             events = {:?}\nstatus = {:?}\nmetrics_file = {:?}\nservices = {:?}\n\
             snaplen = {snaplen}\n",
            dir.join("events.jsonl"),
            dir.join(status),
            dir.join("metrics.prom"),
            services,
        )
    };
    std::fs::write(&config, daemon_table("status.json", 256)).unwrap();
    let source = ConfigSource::Toml(config.clone());
    let overrides = Overrides::default();
    let file = load(&source, &overrides).unwrap();
    let catalogue = load_catalogue(&file.daemon).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let setup = Setup {
        source,
        overrides,
        file,
        catalogue: catalogue.clone(),
        offload: None,
        listener: Some(listener),
    };
    let trace = root().join("samples/lab/police-128k.pcap");
    let (done_tx, done) = mpsc::channel();
    let replay = TraceReplay::new(&trace, window_s, done_tx);
    let (origin, last_frame) = (replay.frames[0].1, replay.frames[replay.frames.len() - 1].1);
    let (control_tx, control) = tokio::sync::mpsc::unbounded_channel();

    let events = dir.join("events.jsonl");
    let reloaded = daemon_table("status2.json", 300);
    let driver = {
        let (config, events) = (config.clone(), events.clone());
        std::thread::spawn(move || {
            done.recv_timeout(Duration::from_secs(300)).expect("the replay ends");
            let served = get(addr, "/metrics");
            assert!(served.starts_with("HTTP/1.1 200 OK\r\n"), "{served}");
            assert!(served.contains("throttlewatch_build_info{version="), "{served}");
            assert!(get(addr, "/other").starts_with("HTTP/1.1 404"));
            // A bad file: the old configuration stays.
            std::fs::write(&config, "[daemon]\ninterfaces = [\"replay0\"]\nsnaplen = 10\n")
                .unwrap();
            control_tx.send(Control::Reload).unwrap();
            wait_for_event(&events, "reload_failed");
            // A good one: the status moves (live), the snap length waits for a restart.
            std::fs::write(&config, reloaded).unwrap();
            control_tx.send(Control::Reload).unwrap();
            control_tx.send(Control::Stop(StopReason::Sigterm)).unwrap();
        })
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    assert!(start(&runtime, setup, vec![replay], control).is_ok());
    driver.join().expect("the driver's checks hold");

    let written = lines(&events);
    let kinds: Vec<&str> = written.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"start"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"stop"), "{kinds:?}");
    assert_eq!(written.last().unwrap()["reason"], "SIGTERM");
    let failed = written.iter().find(|e| e["type"] == "reload_failed").unwrap();
    assert!(failed["error"].as_str().unwrap().contains("snaplen = 10"), "{failed}");
    let reload = written.iter().find(|e| e["type"] == "reload").unwrap();
    assert_eq!(reload["needs_restart"], serde_json::json!(["snaplen"]));
    assert_eq!(reload["catalogue_changed"], false);

    // The daemon's verdicts are analyze's on the same grid. Analyze's last window ends at
    // the trace's last packet, the daemon's at the grid's line; the daemon's final window,
    // cut short by the stop, holds no packet and so no finding.
    let daemon: Vec<Value> =
        written.iter().filter(|e| e["type"] == "verdict").map(|e| e["verdict"].clone()).collect();
    let expected = analyze(AnalyzeInput {
        files: vec![trace],
        config: PipelineConfig::default(),
        catalogue,
        detect: DetectConfig { window_s, ..DetectConfig::default() },
        window_origin: Some(origin),
        history: None,
        progress: false,
        jobs: 1,
    });
    let mut expected: Vec<Value> =
        expected.verdicts.iter().map(|v| serde_json::to_value(v).unwrap()).collect();
    assert!(expected.iter().any(|v| v["finding"] == "throttled"), "{expected:?}");
    let last_start = expected.last().unwrap()["window"]["start"].clone();
    let window_us = window_s * 1_000_000;
    let windows = last_frame.since(origin) / window_us + 1;
    let grid_end = origin.add_micros(windows * window_us).to_string();
    for v in expected.iter_mut().filter(|v| v["window"]["start"] == last_start) {
        assert!(v["window"]["end"].as_str() < Some(grid_end.as_str()), "{v}");
        v["window"]["end"] = Value::String(grid_end.clone());
    }
    let (windowed, last): (Vec<Value>, Vec<Value>) =
        daemon.into_iter().partition(|v| v["window"]["start"].as_str() <= last_start.as_str());
    assert_eq!(windowed, expected);
    assert!(!last.is_empty() && last.iter().all(|v| v["finding"] == "none"), "{last:?}");

    // The status went to the new path from the reload on; the outputs agree.
    let status: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("status2.json")).unwrap()).unwrap();
    let windows = status["verdicts"].as_array().map(Vec::len);
    assert!(windows.is_some(), "{status}");
    let metrics_file = std::fs::read_to_string(dir.join("metrics.prom")).unwrap();
    let scraped = runtime
        .block_on(async { tokio::task::spawn_blocking(move || get(addr, "/metrics")).await })
        .unwrap();
    let (head, body) = scraped.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert_eq!(body, metrics_file, "/metrics serves what the file holds");
    assert!(body.contains("throttlewatch_reloads_total{result=\"ok\"} 1\n"), "{body}");
    assert!(body.contains("throttlewatch_reloads_total{result=\"failed\"} 1\n"), "{body}");
    let frames = format!("throttlewatch_packets_total{{interface=\"replay0\"}} {}\n", {
        let mut n = 0u64;
        TraceFile::open(&root().join("samples/lab/police-128k.pcap"))
            .unwrap()
            .for_each_packet(|_, _, _, _| n += 1)
            .unwrap();
        n
    });
    assert!(body.contains(&frames), "every frame counted: {frames}{body}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The verdicts of the daemon whose `workers` capture workers each read the share of the
/// lab trace `name` that the kernel's fanout program hands it, window by window, with the
/// flow ids left out (each worker numbers its own); and each worker's packets.
/// `lan_and_wan`: the daemon captures a router's LAN, where the trace was taken, and its WAN
/// too, where every packet shows as well ([`TraceReplay::share`]).
fn sharded_verdicts(name: &str, workers: u32, lan_and_wan: bool) -> (Vec<Value>, Vec<u64>) {
    // Tests run at once: each call has a directory of its own.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir()
        .join(format!("tw-daemon-workers-{}-{call}-{name}-{workers}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let window_s = 5;
    let config = dir.join("throttlewatch.toml");
    std::fs::write(
        &config,
        format!(
            "[detect]\nwindow_s = {window_s}\n[daemon]\ninterfaces = [\"replay0\"]\n\
             events = {:?}\nmetrics_file = {:?}\nservices = {:?}\ncapture_workers = {workers}\n",
            dir.join("events.jsonl"),
            dir.join("metrics.prom"),
            root().join("samples/lab-services.toml"),
        ),
    )
    .unwrap();
    let source = ConfigSource::Toml(config);
    let overrides = Overrides::default();
    let file = load(&source, &overrides).unwrap();
    let catalogue = load_catalogue(&file.daemon).unwrap();
    let setup = Setup { source, overrides, file, catalogue, offload: None, listener: None };
    let trace = root().join("samples/lab").join(format!("{name}.pcap"));
    let (mut replays, mut dones) = (Vec::new(), Vec::new());
    for worker in 0..workers {
        let (done_tx, done) = mpsc::channel();
        replays.push(TraceReplay::share(&trace, window_s, (worker, workers), lan_and_wan, done_tx));
        dones.push(done);
    }
    let (control_tx, control) = tokio::sync::mpsc::unbounded_channel();
    let driver = std::thread::spawn(move || {
        for done in dones {
            done.recv_timeout(Duration::from_secs(300)).expect("the replay ends");
        }
        control_tx.send(Control::Stop(StopReason::Sigterm)).unwrap();
    });
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    assert!(start(&runtime, setup, replays, control).is_ok());
    driver.join().unwrap();
    let mut verdicts: Vec<Value> = lines(&dir.join("events.jsonl"))
        .into_iter()
        .filter(|e| e["type"] == "verdict")
        .map(|e| e["verdict"].clone())
        .collect();
    fn without_ids(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.retain(|k, _| !matches!(k.as_str(), "flow" | "flows"));
                map.values_mut().for_each(without_ids);
            }
            Value::Array(items) => items.iter_mut().for_each(without_ids),
            _ => {}
        }
    }
    verdicts.iter_mut().for_each(without_ids);
    let metrics = std::fs::read_to_string(dir.join("metrics.prom")).unwrap();
    let packets = (0..workers)
        .map(|w| {
            let line = format!("throttlewatch_worker_packets_total{{worker=\"{w}\"}} ");
            let value = metrics.lines().find_map(|l| l.strip_prefix(line.as_str()));
            value.unwrap_or_else(|| panic!("{line} in {metrics}")).parse().unwrap()
        })
        .collect();
    std::fs::remove_dir_all(&dir).unwrap();
    (verdicts, packets)
}

/// Capture workers fed as the kernel's fanout feeds them give the verdicts of one, window
/// by window: a policed download (TCP flows spread over the workers) and a lossy call (UDP
/// on the first worker, its control flows elsewhere). Every worker measured packets, and
/// together every frame of the trace.
#[cfg(feature = "jobs")]
#[test]
fn capture_workers_give_the_verdicts_of_one() {
    for name in ["police-128k", "call-loss"] {
        let (one, packets) = sharded_verdicts(name, 1, false);
        assert!(one.iter().any(|v| v["finding"] != "none"), "{name}: {one:?}");
        for workers in [2, 3] {
            let (many, shares) = sharded_verdicts(name, workers, false);
            assert_eq!(many, one, "{name} with {workers} workers");
            assert!(shares.iter().all(|&n| n > 0), "{name}: {shares:?}");
            assert_eq!(shares.iter().sum::<u64>(), packets[0], "{name}: {shares:?}");
        }
    }
}

/// A router that forwards without NAT shows every packet at its LAN and again at its WAN,
/// with the same addresses: the daemon capturing both measures each flow at one of them, and
/// gives the verdicts of the LAN alone (with their evidence: packets, losses, rates), with one
/// capture worker and with two.
#[test]
fn lan_and_wan_without_nat_give_the_verdicts_of_the_lan() {
    for name in ["police-128k", "call-loss"] {
        // The last window, cut short by the stop, ends at the last frame: the WAN's, later.
        let last_cut_short = |mut verdicts: Vec<Value>| {
            let last = verdicts.last().map(|v| v["window"]["end"].clone());
            for v in verdicts.iter_mut().filter(|v| Some(&v["window"]["end"]) == last.as_ref()) {
                v["window"]["end"] = Value::Null;
            }
            verdicts
        };
        let lan = last_cut_short(sharded_verdicts(name, 1, false).0);
        assert!(lan.iter().any(|v| v["finding"] != "none"), "{name}: {lan:?}");
        let workers: &[u32] = if cfg!(feature = "jobs") { &[1, 2] } else { &[1] };
        for &workers in workers {
            let (both, packets) = sharded_verdicts(name, workers, true);
            let both = last_cut_short(both);
            assert_eq!(both, lan, "{name}, LAN and WAN, {workers} worker(s)");
            assert!(packets.iter().all(|&n| n > 0), "{name}: {packets:?}");
        }
    }
}

/// One step of a scripted capture: the clock, and the frames (their timestamps) waiting then.
struct Step {
    clock: Timestamp,
    frames: Vec<Timestamp>,
}

/// A capture whose clock and frames follow a script, one step per wait; every frame is the
/// first frame of a lab trace, stamped as the script says.
struct Scripted {
    frame: Vec<u8>,
    steps: Vec<Step>,
    step: usize,
    delivered: bool,
    done: Option<mpsc::Sender<()>>,
}

impl FrameSource for Scripted {
    fn read(
        &mut self,
        mut frame: impl FnMut(Option<u32>, LinkType, Stream, Timestamp, &[u8], u32),
    ) -> Reads {
        let mut frames = 0;
        if !self.delivered
            && let Some(step) = self.steps.get(self.step)
        {
            for &ts in &step.frames {
                frame(
                    None,
                    LinkType::Ethernet,
                    Stream::Measured,
                    ts,
                    &self.frame,
                    self.frame.len() as u32,
                );
                frames += 1;
            }
            self.delivered = true;
        }
        Reads { frames, changes: Vec::new() }
    }

    fn wait(&mut self) {
        if self.step + 1 < self.steps.len() {
            self.step += 1;
            self.delivered = false;
        } else {
            if let Some(done) = self.done.take() {
                let _ = done.send(());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn now(&self) -> Timestamp {
        self.steps[self.step].clock
    }

    fn flush(&mut self, _frame: impl FnMut(Option<u32>, LinkType, Stream, Timestamp, &[u8], u32)) {}

    fn counters(&mut self) -> Vec<InterfaceCounters> {
        Vec::new()
    }
}

/// The windows the capture thread sends for `steps` (1 s windows), then a stop: each with
/// whether it is the final, cut-short one.
fn windows_of(steps: Vec<Step>) -> Vec<(Window, bool)> {
    let sent = sent_by_capture(steps, None);
    sent.into_iter().map(|(window, last, _)| (window, last)).collect()
}

/// The windows the capture thread sends for `steps` (1 s windows), told of `catalogue` (and
/// its time) before its first read, then a stop: each with whether it is the final,
/// cut-short one, and the catalogue its flows were classified with.
fn sent_by_capture(
    steps: Vec<Step>,
    catalogue: Option<(crate::classify::Catalogue, Timestamp)>,
) -> Vec<(Window, bool, crate::classify::Catalogue)> {
    use super::capture::{FromCapture, ToCapture, capture_loop};
    let mut trace = TraceFile::open(&root().join("samples/lab/police-128k.pcap")).unwrap();
    assert_eq!(trace.link(), LinkType::Ethernet);
    let mut first = None;
    trace
        .for_each_packet(|_, _, bytes, _| {
            first.get_or_insert_with(|| bytes.to_vec());
        })
        .unwrap();
    let (done_tx, done) = mpsc::channel();
    let source =
        Scripted { frame: first.unwrap(), steps, step: 0, delivered: false, done: Some(done_tx) };
    let pipeline = crate::pipeline::Pipeline::new(
        PipelineConfig::default(),
        crate::classify::Classifier::new(
            <crate::classify::Catalogue as crate::classify::CatalogueFile>::builtin(),
        ),
    );
    let (to_main, mut from_capture) = tokio::sync::mpsc::channel(64);
    let (to_capture, from_main) = mpsc::channel();
    if let Some((catalogue, from)) = catalogue {
        to_capture.send(ToCapture::Catalogue(Box::new(catalogue), from)).unwrap();
    }
    let origin = source.now();
    let thread = std::thread::spawn(move || {
        capture_loop(0, source, pipeline, (origin, 1), to_main, from_main)
    });
    done.recv_timeout(Duration::from_secs(300)).expect("the script ends");
    to_capture.send(ToCapture::Stop).unwrap();
    let mut windows = Vec::new();
    while let Some(message) = from_capture.blocking_recv() {
        match message {
            FromCapture::Window(_, w) => windows.push((w.window, false, w.catalogue)),
            FromCapture::Final(_, w) => windows.push((w.window, true, w.catalogue)),
            FromCapture::Link(..) => panic!("no interface changed"),
        }
    }
    thread.join().unwrap();
    windows
}

/// A new catalogue is taken at the cut of the first window that ends at or after its time,
/// whatever the thread has read meanwhile: every capture worker changes at the same window.
#[test]
fn a_new_catalogue_is_taken_at_the_window_end_it_names() {
    use crate::classify::{Catalogue, CatalogueFile};
    let o = Timestamp::from_micros(1_790_000_000_000_000);
    let at = |ms: u64| o.add_micros(ms * 1000);
    let steps =
        (0..4).map(|s| Step { clock: at(s * 1000 + 500), frames: vec![at(s * 1000 + 100)] });
    let new = Catalogue::from_file(&root().join("samples/lab-services.toml")).unwrap();
    let is_new = |c: &Catalogue| c.source_name() == new.source_name();
    assert!(!is_new(&Catalogue::builtin()));
    // The grid begins at the first clock reading (0.5 s); told at once, for the windows
    // from 2 s on: the one that ends at 2.5 s is the last with the old catalogue.
    let sent = sent_by_capture(steps.collect(), Some((new.clone(), at(2000))));
    let ends: Vec<(u64, bool)> =
        sent.iter().map(|(w, _, c)| (w.end.since(o) / 1000, is_new(c))).collect();
    assert_eq!(ends[..3], [(1500, false), (2500, false), (3500, true)], "{ends:?}");
    assert!(sent[3..].iter().all(|(_, _, c)| is_new(c)), "{ends:?}");
}

/// A quiet link's window closes on the clock once it is the grace past the window's end,
/// not before; a clock stepped back by more than a window restarts the grid there.
#[test]
fn windows_close_on_frames_on_the_quiet_clock_and_restart_after_a_clock_step() {
    let o = Timestamp::from_micros(1_790_000_000_000_000);
    let at = |ms: u64| o.add_micros(ms * 1000);
    let window = |start: Timestamp| Window { start, end: start.add_micros(1_000_000) };
    let step = |clock: Timestamp, frames: Vec<Timestamp>| Step { clock, frames };
    let grace_ms = WINDOW_GRACE_US / 1000;

    // Closed by the clock, the grace past the end, with no frame after it.
    let quiet = windows_of(vec![
        step(o, vec![at(100), at(500)]),
        step(at(1000 + grace_ms - 1), vec![]),
        step(at(1000 + grace_ms), vec![]),
    ]);
    assert_eq!(quiet[0], (window(o), false), "{quiet:?}");
    assert_eq!(quiet.len(), 2, "{quiet:?}");
    assert!(quiet[1].1 && quiet[1].0.start == at(1000), "{quiet:?}");

    // Not yet: a frame stamped before the end may still be on its way.
    let early =
        windows_of(vec![step(o, vec![at(100), at(500)]), step(at(1000 + grace_ms - 1), vec![])]);
    assert_eq!(early, [(Window { start: o, end: at(1000 + grace_ms - 1) }, true)]);

    // Closed by the first frame beyond it; then the clock steps back 10 s (a router's clock
    // set by NTP after booting at a wrong time): the grid starts again at the new time.
    let n = Timestamp::from_micros(o.micros() - 10_000_000);
    let stepped = windows_of(vec![
        step(o, vec![at(100), at(500), at(1200)]),
        step(n, vec![]),
        step(n, vec![n.add_micros(200_000), n.add_micros(1_500_000)]),
    ]);
    assert_eq!(stepped[0], (window(o), false), "{stepped:?}");
    assert_eq!(stepped[1], (window(n), false), "{stepped:?}");
    assert_eq!(stepped.len(), 3, "{stepped:?}");
    assert!(stepped[2].1 && stepped[2].0.start == n.add_micros(1_000_000), "{stepped:?}");
}
