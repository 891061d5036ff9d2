//! `throttlewatch run`: the same pipeline and detectors as `analyze`, fed by live captures
//! (ARCHITECTURE.md, Pipeline and Capture and decode; docs/events.md, docs/status.md).
//!
//! One capture thread owns the captures, the pipeline and its flow table; at each window's end
//! (packet time, or the wall clock when the link is quiet — the same clock the kernel stamps
//! packets with) it hands a snapshot of the window's flows to the main thread. The main thread
//! runs a current-thread tokio runtime: it evaluates the window, writes the events, the status
//! file and the metrics, serves `/metrics`, and handles SIGHUP (reload; a bad file keeps the
//! old configuration running) and SIGTERM/SIGINT (flush the current window, a final event,
//! exit 0). Root is given up once the captures are open.
//!
//! Start-up checks what can be wrong in the configuration (the user, the outputs' paths and
//! whether that user can write them, the listen address) before the seconds the kernel
//! filter takes to build. Interfaces that vanish or are missing are waited for
//! ([`interfaces`]); only SIGTERM/SIGINT end the daemon.

mod http;
pub mod interfaces;
pub mod outputs;
pub mod system;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::SystemTime;

use serde_json::json;

use crate::capture::{LiveCapture, LiveInterface, Stream, filter};
use crate::classify::{Catalogue, CatalogueFile, Classifier};
use crate::config::{self, ConfigFile, DaemonConfig, PipelineConfig};
use crate::decode::LinkType;
use crate::detect::history::History;
use crate::detect::{Window, WindowGrid, evaluate_window};
use crate::pipeline::{Pipeline, Snapshot};
use crate::time::Timestamp;

use interfaces::{LinkChange, OpenSpec, Watched};
use outputs::{EventSink, InterfaceCounters, Output, State, event, replace_file};

/// How long the capture thread waits at most when no interface had a packet waiting.
const IDLE_WAIT_MS: i32 = 50;
/// Packets read from one capture before the next gets its turn.
const BATCH: usize = 4096;
/// How long past a window's end the wall clock must be, with nothing left to read, before a
/// quiet link's window is closed: packets stamped before the end may still be on their way
/// from the kernel.
const WINDOW_GRACE_US: u64 = 250_000;

/// Where the configuration comes from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    Toml(PathBuf),
    Uci(PathBuf),
    /// Flags only.
    Flags,
}

/// Command-line settings that override the file (also after a reload).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub interfaces: Vec<String>,
    pub window_s: Option<u64>,
    pub events: Option<String>,
    pub status: Option<String>,
    pub metrics_file: Option<String>,
    pub listen: Option<String>,
    pub services: Option<String>,
    pub user: Option<String>,
    pub snaplen: Option<u32>,
    pub control_sample: Option<u32>,
    pub history: Option<String>,
}

/// A failure, and whether it was the user's input (exit 2) or the run (exit 1).
#[derive(Debug)]
pub enum RunError {
    Input(String),
    Runtime(String),
}

/// Read the configuration, apply the overrides, check everything.
pub fn load(source: &ConfigSource, o: &Overrides) -> Result<ConfigFile, String> {
    let mut file = match source {
        ConfigSource::Toml(path) => config::load_config(path)?,
        ConfigSource::Uci(path) => config::uci::load(path)?,
        ConfigSource::Flags => ConfigFile::default(),
    };
    let d = &mut file.daemon;
    if !o.interfaces.is_empty() {
        d.interfaces = o.interfaces.clone();
    }
    let set = |slot: &mut String, v: &Option<String>| {
        if let Some(v) = v {
            *slot = v.clone();
        }
    };
    set(&mut d.events, &o.events);
    set(&mut d.status, &o.status);
    set(&mut d.metrics_file, &o.metrics_file);
    set(&mut d.listen, &o.listen);
    set(&mut d.services, &o.services);
    set(&mut d.user, &o.user);
    set(&mut d.history, &o.history);
    d.snaplen = o.snaplen.unwrap_or(d.snaplen);
    d.control_sample = o.control_sample.unwrap_or(d.control_sample);
    file.detect.window_s = o.window_s.unwrap_or(file.detect.window_s);
    file.detect.validate()?;
    file.daemon.validate()?;
    Ok(file)
}

fn load_catalogue(d: &DaemonConfig) -> Result<Catalogue, String> {
    if d.services.is_empty() {
        return Ok(Catalogue::builtin());
    }
    Catalogue::from_file(Path::new(&d.services)).map_err(|e| e.to_string())
}

pub(crate) fn log(message: &str) {
    eprintln!("throttlewatch: {message}");
}

fn wall_clock() -> Timestamp {
    let since = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    Timestamp::from_micros(u64::try_from(since.as_micros()).unwrap_or(u64::MAX))
}

/// Messages from the capture thread.
enum FromCapture {
    Window(Box<WindowData>),
    /// The last window, cut short by a stop.
    Final(Box<WindowData>),
    /// An interface went down or came back.
    Link(LinkChange),
}

struct WindowData {
    window: Window,
    snapshot: Snapshot,
    /// The catalogue the snapshot's flows were classified with.
    catalogue: Catalogue,
    interfaces: Vec<InterfaceCounters>,
}

/// Messages to the capture thread.
enum ToCapture {
    Catalogue(Box<Catalogue>),
    Stop,
}

/// The signals the daemon answers, registered before anything slow happens (compiling the
/// capture filter takes seconds): a SIGHUP during start-up must not kill the process.
struct Signals {
    hup: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

/// Run until SIGTERM/SIGINT.
pub fn run(source: ConfigSource, overrides: Overrides) -> Result<(), RunError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Runtime(format!("cannot start the runtime: {e}")))?;
    let signals = runtime
        .block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            Ok::<_, std::io::Error>(Signals {
                hup: signal(SignalKind::hangup())?,
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        })
        .map_err(|e| RunError::Runtime(format!("cannot handle signals: {e}")))?;
    let file = load(&source, &overrides).map_err(RunError::Input)?;
    let catalogue = load_catalogue(&file.daemon).map_err(RunError::Input)?;
    for warning in catalogue.warnings() {
        log(&format!("warning: {}: {warning}", catalogue.source_name()));
    }
    let d = &file.daemon;
    // What can be wrong in the configuration, before the filter takes its seconds to build.
    let account = match d.user.as_str() {
        "" => None,
        user => Some(system::Account::find(user).map_err(RunError::Input)?),
    };
    check_outputs(d, account.as_ref()).map_err(RunError::Input)?;
    let listener = match d.listen.as_str() {
        "" => None,
        addr => Some(
            std::net::TcpListener::bind(addr)
                .map_err(|e| RunError::Input(format!("listen {addr}: {e}")))?,
        ),
    };
    let expression = filter::fitting(&catalogue, d.control_sample);
    let filter_text = match (&expression, d.control_sample) {
        (_, 1) => "no filter".to_string(),
        (Some((_, n)), sample) => {
            format!("service traffic and 1 in {sample} other flows ({n} BPF instructions)")
        }
        (None, _) => "no filter (the catalogue's ranges do not fit a kernel filter)".to_string(),
    };
    let spec = OpenSpec {
        snaplen: d.snaplen,
        buffer_kib: d.buffer_kib,
        filter: expression.map(|(f, _)| f),
        classify_snaplen: d.classify_snaplen,
        filter_text,
    };
    let mut captures = Vec::new();
    for name in &d.interfaces {
        captures.push(Watched::open(name, &spec, wall_clock()).map_err(RunError::Input)?);
    }
    let offload = system::offload_warning(
        Path::new("/etc/config/firewall"),
        Path::new("/proc/net/nf_conntrack"),
    );
    if let Some(w) = &offload {
        log(&format!("WARNING: {w}"));
    }
    if let Some(account) = &account {
        system::drop_privileges(account).map_err(RunError::Input)?;
        log(&format!("running as user {}", account.name));
    }
    let events = EventSink::open(&d.events, d.events_max_kib).map_err(RunError::Input)?;
    let history = match d.history.as_str() {
        "" => None,
        path => Some(History::load(Path::new(path)).map_err(RunError::Input)?),
    };

    let pipeline_config = PipelineConfig {
        max_flows: d.max_flows,
        detail_flows: d.detail_flows,
        ..PipelineConfig::default()
    };
    let interface_counters: Vec<InterfaceCounters> =
        captures.iter_mut().map(|w| w.counters(0)).collect();
    let (to_main, from_capture) = tokio::sync::mpsc::channel(4);
    let (to_capture, from_main) = mpsc::channel();
    let window_s = file.detect.window_s;
    let mut pipeline = Pipeline::new(pipeline_config, Classifier::new(catalogue.clone()));
    pipeline.retain_for_windows(d.max_flows);
    let capture_thread = std::thread::Builder::new()
        .name("capture".into())
        .spawn(move || capture_loop(captures, spec, pipeline, window_s, to_main, from_main))
        .map_err(|e| RunError::Runtime(format!("cannot start the capture thread: {e}")))?;

    let mut state = State {
        started: Some(wall_clock()),
        window_s: file.detect.window_s,
        max_flows: d.max_flows,
        offload_warning: offload,
        interfaces: interface_counters,
        ..State::default()
    };
    state.set_catalogue(&catalogue);
    let services_text = services_text(&file.daemon);
    let metrics = Arc::new(Mutex::new(state.metrics()));
    let mut main = Main {
        source,
        overrides,
        file,
        events,
        history,
        state,
        metrics,
        to_capture,
        services_text,
    };
    let result = runtime.block_on(main.serve(from_capture, listener, signals));
    let _ = main.to_capture.send(ToCapture::Stop);
    let _ = capture_thread.join();
    result.map_err(RunError::Runtime)
}

/// Check that every output path can be written by the user the daemon becomes (or by this
/// process), so that a wrong path or owner ends start-up with the path named instead of
/// failing every window.
fn check_outputs(d: &DaemonConfig, account: Option<&system::Account>) -> Result<(), String> {
    let outputs = [
        ("events", d.events.as_str()),
        ("status", d.status.as_str()),
        ("metrics_file", d.metrics_file.as_str()),
        ("history", d.history.as_str()),
    ];
    for (key, path) in outputs {
        if !path.is_empty() && path != "-" {
            system::check_writable(key, Path::new(path), account)?;
        }
    }
    Ok(())
}

/// The capture thread: read, measure, and cut windows.
fn capture_loop(
    mut captures: Vec<Watched>,
    spec: OpenSpec,
    mut pipeline: Pipeline,
    window_s: u64,
    to_main: tokio::sync::mpsc::Sender<FromCapture>,
    from_main: mpsc::Receiver<ToCapture>,
) {
    let mut packets = vec![0u64; captures.len()];
    let window_us = window_s * 1_000_000;
    // Windows on packet time from the start, as `analyze --window-origin` cuts them: a
    // window closes before the first packet beyond it, or once the clock is past it and no
    // packet of it can still be waiting.
    let mut grid = WindowGrid::new(window_s, Some(wall_clock()));
    let counters = |captures: &mut [Watched], packets: &[u64]| {
        captures.iter_mut().zip(packets).map(|(c, &n)| c.counters(n)).collect::<Vec<_>>()
    };
    /// Windows a packet closed while the captures were being read, sent once they are.
    struct Closed {
        window: Window,
        snapshot: Snapshot,
        catalogue: Catalogue,
    }
    // Both captures of an interface are on the same device: one link type. The measuring
    // packets create the flows; each full copy comes right after its measuring twin.
    fn feed<'a>(
        pipeline: &'a mut Pipeline,
        grid: &'a mut WindowGrid,
        closed: &'a mut Vec<Closed>,
        link: LinkType,
    ) -> impl FnMut(Stream, Timestamp, &[u8], u32) + 'a {
        move |stream, ts, frame, len| match stream {
            Stream::Measured => {
                if let Some(window) = grid.due(ts) {
                    closed.push(Closed {
                        window,
                        snapshot: pipeline.snapshot(window.end),
                        catalogue: pipeline.catalogue().clone(),
                    });
                }
                pipeline.process(link, ts, frame, len)
            }
            Stream::FullCopy => pipeline.inspect_full(link, ts, frame, len),
        }
    }
    let mut closed = Vec::new();
    loop {
        let mut read = 0;
        let mut failed = Vec::new();
        for (i, (watched, count)) in captures.iter_mut().zip(packets.iter_mut()).enumerate() {
            let Some(interface) = watched.captures_mut() else { continue };
            let link = interface.measure().link();
            match interface.poll(
                BATCH,
                wall_clock,
                feed(&mut pipeline, &mut grid, &mut closed, link),
            ) {
                Ok(polled) => {
                    *count += polled.measured as u64;
                    read += polled.measured + polled.copies;
                }
                Err(e) => failed.push((i, e)),
            }
        }
        for change in interfaces::tend(&mut captures, failed, &spec, wall_clock()) {
            if to_main.blocking_send(FromCapture::Link(change)).is_err() {
                return;
            }
        }
        if read == 0 {
            // Nothing waiting on any interface: sleep until the kernel hands over packets, or
            // briefly, to end windows, read held copies and see messages on a quiet link.
            let all: Vec<&LiveCapture> = captures
                .iter()
                .filter_map(Watched::captures)
                .flat_map(LiveInterface::captures)
                .collect();
            LiveCapture::wait_any(&all, IDLE_WAIT_MS);
        }
        // The kernel stamps packets with the wall clock: a quiet link still ends windows,
        // once the captures had time to hand over every packet of the window.
        let now = wall_clock();
        if read == 0
            && let Some(window) =
                grid.due(Timestamp::from_micros(now.micros().saturating_sub(WINDOW_GRACE_US)))
        {
            closed.push(Closed {
                window,
                snapshot: pipeline.snapshot(window.end),
                catalogue: pipeline.catalogue().clone(),
            });
        }
        // A clock stepped back by more than a window (a router without a real-time clock,
        // then NTP) restarts the grid.
        if grid.last(now).is_some_and(|w| w.start.since(now) > window_us) {
            grid = WindowGrid::new(window_s, Some(now));
        }
        let stop = match from_main.try_recv() {
            Ok(ToCapture::Catalogue(c)) => {
                pipeline.set_catalogue(*c);
                false
            }
            Ok(ToCapture::Stop) | Err(mpsc::TryRecvError::Disconnected) => true,
            Err(mpsc::TryRecvError::Empty) => false,
        };
        if stop {
            for interface in captures.iter_mut().filter_map(Watched::captures_mut) {
                let link = interface.measure().link();
                interface.flush(feed(&mut pipeline, &mut grid, &mut closed, link));
            }
        }
        let interfaces = (!closed.is_empty() || stop).then(|| counters(&mut captures, &packets));
        for c in closed.drain(..) {
            let data = Box::new(WindowData {
                window: c.window,
                snapshot: c.snapshot,
                catalogue: c.catalogue,
                interfaces: interfaces.clone().unwrap_or_default(),
            });
            if to_main.blocking_send(FromCapture::Window(data)).is_err() {
                return;
            }
        }
        if stop {
            let at = now.max(pipeline.clock());
            let window = grid.last(at).unwrap_or(Window { start: at, end: at });
            let data = Box::new(WindowData {
                window,
                snapshot: pipeline.snapshot(at),
                catalogue: pipeline.catalogue().clone(),
                interfaces: interfaces.unwrap_or_default(),
            });
            let _ = to_main.blocking_send(FromCapture::Final(data));
            return;
        }
    }
}

/// The catalogue file's text ("" for the built-in one): a reload with the same text keeps
/// the classifier and what it learned from the wire.
fn services_text(d: &DaemonConfig) -> String {
    match d.services.as_str() {
        "" => String::new(),
        path => std::fs::read_to_string(path).unwrap_or_default(),
    }
}

/// The main thread's state.
struct Main {
    source: ConfigSource,
    overrides: Overrides,
    file: ConfigFile,
    events: EventSink,
    history: Option<History>,
    state: State,
    /// What `/metrics` serves.
    metrics: Arc<Mutex<String>>,
    to_capture: mpsc::Sender<ToCapture>,
    services_text: String,
}

impl Main {
    async fn serve(
        &mut self,
        mut from_capture: tokio::sync::mpsc::Receiver<FromCapture>,
        listener: Option<std::net::TcpListener>,
        signals: Signals,
    ) -> Result<(), String> {
        let Signals { mut hup, mut term, mut int } = signals;
        if let Some(listener) = listener {
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            http::spawn(listener, Arc::clone(&self.metrics))?;
            log(&format!("metrics on http://{addr}/metrics"));
        }
        let interfaces = self.file.daemon.interfaces.clone();
        self.emit(
            "start",
            json!({ "version": env!("CARGO_PKG_VERSION"), "interfaces": interfaces,
            "window_s": self.file.detect.window_s, "offload_warning": self.state.offload_warning }),
        );
        // Interfaces missing at start, waited for.
        let missing: Vec<(String, String)> = (self.state.interfaces.iter())
            .filter_map(|i| Some((i.name.clone(), i.down.as_ref()?.1.clone())))
            .collect();
        for (interface, reason) in missing {
            self.emit("interface_down", json!({ "interface": interface, "reason": reason }));
        }
        self.publish();
        let mut stop_reason = None;
        loop {
            tokio::select! {
                message = from_capture.recv() => match message {
                    Some(FromCapture::Window(w)) => self.window(*w),
                    Some(FromCapture::Final(w)) => {
                        self.window(*w);
                        let reason = stop_reason.unwrap_or("capture ended");
                        self.emit("stop", json!({ "reason": reason }));
                        log(&format!("stopped ({reason})"));
                        return Ok(());
                    }
                    Some(FromCapture::Link(change)) => self.link(change),
                    None => return Err("the capture thread ended".into()),
                },
                _ = hup.recv() => self.reload(),
                _ = term.recv(), if stop_reason.is_none() => {
                    stop_reason = Some("SIGTERM");
                    let _ = self.to_capture.send(ToCapture::Stop);
                }
                _ = int.recv(), if stop_reason.is_none() => {
                    stop_reason = Some("SIGINT");
                    let _ = self.to_capture.send(ToCapture::Stop);
                }
            }
        }
    }

    fn emit(&mut self, kind: &str, fields: serde_json::Value) {
        if let Err(e) = self.events.write(event(kind, Some(wall_clock()), fields)) {
            log(&e);
            self.state.output_failed(Output::Events, &e);
        }
        self.state.events_lost = self.events.lost_total();
    }

    /// An interface went down or came back: an event, and the outputs show it at once.
    fn link(&mut self, change: LinkChange) {
        let interface = self.state.interfaces.iter_mut().find(|i| i.name == change.interface);
        match &change.down {
            Some(reason) => {
                if let Some(i) = interface {
                    i.down = Some((change.at, reason.clone()));
                }
                self.emit(
                    "interface_down",
                    json!({ "interface": change.interface, "reason": reason }),
                );
            }
            None => {
                let down_s = interface
                    .and_then(|i| {
                        i.reopens += 1;
                        i.down.take()
                    })
                    .map(|(since, _)| change.at.since(since) / 1_000_000);
                self.emit(
                    "interface_up",
                    json!({ "interface": change.interface, "down_s": down_s }),
                );
            }
        }
        self.publish();
    }

    /// Write the status and metrics files and hand the metrics to `/metrics`.
    fn publish(&mut self) {
        let s = &mut self.state;
        let text = s.metrics();
        let d = &self.file.daemon;
        let writes = [
            (Output::Status, d.status.as_str(), serde_json::to_vec_pretty(&s.status())),
            (Output::MetricsFile, d.metrics_file.as_str(), Ok(text.clone().into_bytes())),
        ];
        for (output, path, contents) in writes {
            if !path.is_empty()
                && let Err(e) = replace_file(Path::new(path), &contents.unwrap_or_default())
            {
                log(&e);
                s.output_failed(output, &e);
            }
        }
        *self.metrics.lock().unwrap_or_else(|e| e.into_inner()) = text;
    }

    /// Evaluate a window and write every output.
    fn window(&mut self, w: WindowData) {
        let flows: Vec<_> = w.snapshot.flows.iter().collect();
        let verdicts = evaluate_window(
            &flows,
            w.window,
            &w.catalogue,
            &self.file.detect,
            self.history.as_mut(),
        );
        for v in &verdicts {
            self.emit("verdict", json!({ "verdict": v }));
        }
        let s = &mut self.state;
        s.updated = Some(w.window.end);
        s.windows += 1;
        s.interfaces = w.interfaces;
        s.active_flows = w.snapshot.active_flows;
        s.max_flows = w.snapshot.max_flows;
        s.evicted = w.snapshot.table.evicted;
        s.refused = w.snapshot.table.refused;
        s.unreported = w.snapshot.unreported_flows;
        s.set_catalogue(&w.catalogue);
        s.record_verdicts(verdicts);
        if let (Some(h), path) = (&self.history, &self.file.daemon.history)
            && !path.is_empty()
            && let Err(e) = h.save(Path::new(path))
        {
            log(&e);
            self.state.output_failed(Output::History, &e);
        }
        self.publish();
    }

    /// SIGHUP: reopen the events file (logrotate's convention: it may have been moved away);
    /// read the configuration and the catalogue again, keeping the old ones on error. The
    /// outputs show the reload at once.
    fn reload(&mut self) {
        if let Err(e) = self.events.reopen() {
            log(&format!("reload: {e}; events go on to the file open before"));
            self.state.output_failed(Output::Events, &e);
        }
        self.reload_configuration();
        self.publish();
    }

    fn reload_configuration(&mut self) {
        let attempt = load(&self.source, &self.overrides).and_then(|file| {
            let catalogue = load_catalogue(&file.daemon)?;
            Ok((file, catalogue))
        });
        let (file, catalogue) = match attempt {
            Ok(ok) => ok,
            Err(e) => {
                self.state.failed_reloads += 1;
                log(&format!("reload failed, the previous configuration stays: {e}"));
                self.emit("reload_failed", json!({ "error": e }));
                return;
            }
        };
        let (old, new) = (&self.file.daemon, &file.daemon);
        let restart: Vec<&str> = [
            ("interfaces", old.interfaces != new.interfaces),
            ("snaplen", old.snaplen != new.snaplen),
            ("buffer_kib", old.buffer_kib != new.buffer_kib),
            ("control_sample", old.control_sample != new.control_sample),
            ("listen", old.listen != new.listen),
            ("user", old.user != new.user),
            ("max_flows", old.max_flows != new.max_flows),
            ("detail_flows", old.detail_flows != new.detail_flows),
            ("window_s", self.file.detect.window_s != file.detect.window_s),
        ]
        .into_iter()
        .filter_map(|(k, changed)| changed.then_some(k))
        .collect();
        if new.events != old.events || new.events_max_kib != old.events_max_kib {
            match EventSink::open(&new.events, new.events_max_kib) {
                Ok(sink) => self.events.replace(sink),
                Err(e) => {
                    log(&format!("reload: {e}; events stay at {}", old.events));
                    self.state.output_failed(Output::Events, &e);
                }
            }
        }
        if new.history != old.history {
            self.history = match new.history.as_str() {
                "" => None,
                path => History::load(Path::new(path)).map_err(|e| log(&e)).ok(),
            };
        }
        let text = services_text(new);
        let catalogue_changed = text != self.services_text || new.services != old.services;
        if catalogue_changed {
            let _ = self.to_capture.send(ToCapture::Catalogue(Box::new(catalogue)));
            self.services_text = text;
        }
        // What needs a restart keeps its old value.
        let mut file = file;
        let keep = self.file.daemon.clone();
        file.daemon = DaemonConfig {
            events: file.daemon.events,
            events_max_kib: file.daemon.events_max_kib,
            status: file.daemon.status,
            metrics_file: file.daemon.metrics_file,
            services: file.daemon.services,
            history: file.daemon.history,
            ..keep
        };
        file.detect.window_s = self.file.detect.window_s;
        self.file = file;
        self.state.reloads += 1;
        log(&format!(
            "reloaded{}{}",
            if catalogue_changed {
                "; a new catalogue (the kernel filter keeps the old one's ranges until a restart)"
            } else {
                ""
            },
            if restart.is_empty() {
                String::new()
            } else {
                format!("; these take a restart and keep their old values: {}", restart.join(", "))
            }
        ));
        self.emit(
            "reload",
            json!({ "needs_restart": restart, "catalogue_changed": catalogue_changed }),
        );
    }
}
