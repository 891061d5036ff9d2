//! `throttlewatch run`: the same pipeline and detectors as `analyze`, fed by live captures
//! (ARCHITECTURE.md, Pipeline and Capture and decode; docs/events.md, docs/status.md).
//!
//! A capture thread (`capture`) per capture worker (`capture_workers`, default 1) owns its
//! frame source (its captures of the live interfaces behind a small trait, so that tests
//! replay traces through it without root), its pipeline and its flow table; at each window's
//! end (packet time, or the wall clock when the link is quiet — the same clock the kernel
//! stamps packets with) it hands a snapshot of the window's flows to the main thread, which
//! merges the workers' snapshots of the window (`workers`; the kernel's fanout spreads the
//! packets over the workers, `capture::fanout`). The main thread runs a current-thread tokio
//! runtime: it evaluates the window,
//! writes the events, the status file and the metrics, serves `/metrics`, and answers SIGHUP
//! (`reload`; a bad file keeps the old configuration running) and SIGTERM/SIGINT (flush the
//! current window, a final event, exit 0). Root is given up once the captures are open. The
//! configuration is merged from its layers in `config::layers`.
//!
//! Start-up checks what can be wrong in the configuration (the user, the outputs' paths and
//! whether that user can write them, the listen address) before the kernel filter is built
//! (milliseconds: `capture::filter`) and the captures are opened. Interfaces that vanish or are missing are waited for
//! ([`interfaces`]); only SIGTERM/SIGINT end the daemon.

mod capture;
mod http;
pub mod interfaces;
pub mod outputs;
mod reload;
pub mod system;
#[cfg(test)]
mod tests;
mod workers;

use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

#[cfg(feature = "jobs")]
use crate::capture::FanoutGroups;
use crate::capture::filter::KernelFilter;
use crate::capture::kernel_clock;
use crate::classify::{Catalogue, CatalogueFile, Classifier};
use crate::config::{ConfigFile, DaemonConfig, PipelineConfig, load};
pub use crate::config::{ConfigSource, Overrides};
use crate::decode::LinkType;
use crate::detect::history::History;
use crate::detect::{Recent, WindowGrid, evaluate_window};
use crate::pipeline::Pipeline;

use capture::{FrameSource, FromCapture, LiveSource, ToCapture, WindowData};
use interfaces::{LinkChange, OpenSpec, Watched};
use outputs::{EventKind, EventSink, Output, State, StopReason, event, replace_file};
use workers::Windows;

/// A failure, and whether it was the user's input (exit 2) or the run (exit 1).
#[derive(Debug)]
pub enum RunError {
    Input(String),
    Runtime(String),
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

/// The signals the daemon answers, registered before anything else happens: a SIGHUP during
/// start-up must not kill the process.
struct Signals {
    hup: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

/// The measuring captures' kernel filter (`None` with a control sample of 1), said in the log.
fn build_kernel_filter(d: &DaemonConfig, catalogue: &Catalogue) -> Option<KernelFilter> {
    if d.control_sample <= 1 {
        return None;
    }
    let started = Instant::now();
    let built = KernelFilter::build(catalogue, d.control_sample, d.snaplen);
    let took_ms = started.elapsed().as_secs_f64() * 1000.0;
    match &built {
        Some(f) => log(&format!(
            "kernel filter: {} address ranges in {} intervals -> {} BPF instructions \
             (ethernet), built in {took_ms:.1} ms{}",
            f.ranges,
            f.intervals(),
            f.program(LinkType::Ethernet).len(),
            match f.widened_to {
                Some((v4, v6)) => format!("; widened to /{v4} and /{v6} to fit the kernel"),
                None => String::new(),
            }
        )),
        None => {
            log("warning: the catalogue's ranges do not fit a kernel filter even widened to /8")
        }
    }
    built
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
    // What can be wrong in the configuration, before the filter is built and captures open.
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
    let kernel_filter = build_kernel_filter(d, &catalogue);
    let filter_text = match (&kernel_filter, d.control_sample) {
        (_, 1) => "no filter".to_string(),
        (Some(_), sample) => format!("service traffic, calls' media and 1 in {sample} other flows"),
        (None, _) => "no filter (the catalogue's ranges do not fit a kernel filter)".to_string(),
    };
    let workers = d.capture_workers;
    let spec = OpenSpec {
        snaplen: d.snaplen,
        buffer_kib: d.buffer_kib,
        filter: kernel_filter.map(Arc::new),
        classify_snaplen: d.classify_snaplen,
        filter_text,
        #[cfg(feature = "jobs")]
        fanout: (workers > 1).then(|| Arc::new(FanoutGroups::default())),
        worker: (0, workers),
    };
    // Each worker's captures of every interface, the first worker's first.
    let mut sources = Vec::with_capacity(workers);
    for worker in 0..workers {
        let spec = OpenSpec { worker: (worker, workers), ..spec.clone() };
        let mut captures = Vec::new();
        for name in &d.interfaces {
            captures.push(Watched::open(name, &spec, kernel_clock()).map_err(RunError::Input)?);
        }
        sources.push(LiveSource::new(captures, spec));
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
    let (control_tx, control) = tokio::sync::mpsc::unbounded_channel();
    runtime.spawn(forward_signals(signals, control_tx));
    let setup = Setup { source, overrides, file, catalogue, offload, listener };
    start(&runtime, setup, sources, control)
}

/// What the daemon was asked to do, by a signal (or a test).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    /// SIGHUP.
    Reload,
    /// SIGTERM or SIGINT.
    Stop(StopReason),
}

/// The signals, as [`Control`]s for the main loop.
async fn forward_signals(signals: Signals, to_main: tokio::sync::mpsc::UnboundedSender<Control>) {
    let Signals { mut hup, mut term, mut int } = signals;
    loop {
        let control = tokio::select! {
            _ = hup.recv() => Control::Reload,
            _ = term.recv() => Control::Stop(StopReason::Sigterm),
            _ = int.recv() => Control::Stop(StopReason::Sigint),
        };
        if to_main.send(control).is_err() {
            return;
        }
    }
}

/// The checked configuration the daemon starts with, and what it set up from it.
pub(crate) struct Setup {
    pub source: ConfigSource,
    pub overrides: Overrides,
    pub file: ConfigFile,
    pub catalogue: Catalogue,
    pub offload: Option<String>,
    pub listener: Option<std::net::TcpListener>,
}

/// The daemon once its captures are open (and root given up): a capture thread per worker
/// reads its `sources` (at least one), the main thread writes the outputs and answers
/// `control`, until a stop.
pub(crate) fn start(
    runtime: &tokio::runtime::Runtime,
    setup: Setup,
    mut sources: Vec<impl FrameSource + Send + 'static>,
    control: tokio::sync::mpsc::UnboundedReceiver<Control>,
) -> Result<(), RunError> {
    let Setup { source, overrides, file, catalogue, offload, listener } = setup;
    let d = &file.daemon;
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
    let windows = Windows::new(sources.iter_mut().map(FrameSource::counters).collect());
    let (to_main, from_capture) = tokio::sync::mpsc::channel(4 * sources.len());
    let window_s = file.detect.window_s;
    // Every worker's windows on one grid, from its first clock reading.
    let grid = (sources.first().map_or_else(kernel_clock, FrameSource::now), window_s);
    let mut to_capture = Vec::with_capacity(sources.len());
    let mut capture_threads = Vec::with_capacity(sources.len());
    for (worker, frames) in sources.into_iter().enumerate() {
        let (tell, from_main) = mpsc::channel();
        let mut pipeline = Pipeline::new(pipeline_config, Classifier::new(catalogue.clone()));
        pipeline.retain_for_windows(d.max_flows);
        let to_main = to_main.clone();
        let thread = std::thread::Builder::new()
            .name(format!("capture-{worker}"))
            .spawn(move || {
                capture::capture_loop(worker, frames, pipeline, grid, to_main, from_main);
            })
            .map_err(|e| RunError::Runtime(format!("cannot start a capture thread: {e}")))?;
        to_capture.push(tell);
        capture_threads.push(thread);
    }
    drop(to_main);

    let mut state = State {
        started: Some(kernel_clock()),
        window_s: file.detect.window_s,
        max_flows: d.max_flows,
        offload_warning: offload,
        interfaces: windows.interfaces_now(),
        worker_packets: windows.packets_by_worker(),
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
        recent: Recent::default(),
        state,
        metrics,
        to_capture,
        grid: WindowGrid::new(window_s, Some(grid.0)),
        windows,
        services_text,
    };
    let result = runtime.block_on(main.serve(from_capture, listener, control));
    main.tell_workers(|| ToCapture::Stop);
    for thread in capture_threads {
        let _ = thread.join();
    }
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
    /// The attempts of the latest windows (blocking), from one window to the next.
    recent: Recent,
    state: State,
    /// What `/metrics` serves.
    metrics: Arc<Mutex<String>>,
    /// To each capture worker.
    to_capture: Vec<mpsc::Sender<ToCapture>>,
    /// The capture workers' window grid (where it began).
    grid: WindowGrid,
    windows: Windows,
    services_text: String,
}

impl Main {
    async fn serve(
        &mut self,
        mut from_capture: tokio::sync::mpsc::Receiver<FromCapture>,
        listener: Option<std::net::TcpListener>,
        mut control: tokio::sync::mpsc::UnboundedReceiver<Control>,
    ) -> Result<(), String> {
        if let Some(listener) = listener {
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            http::spawn(listener, Arc::clone(&self.metrics))?;
            log(&format!("metrics on http://{addr}/metrics"));
        }
        let interfaces = self.file.daemon.interfaces.clone();
        let offload_warning = self.state.offload_warning.clone();
        self.emit(EventKind::Start {
            version: env!("CARGO_PKG_VERSION"),
            interfaces: &interfaces,
            window_s: self.file.detect.window_s,
            offload_warning: offload_warning.as_deref(),
        });
        // Interfaces missing at start, waited for.
        let missing: Vec<(String, String)> = (self.state.interfaces.iter())
            .filter_map(|i| Some((i.name.clone(), i.down.as_ref()?.1.clone())))
            .collect();
        for (interface, reason) in missing {
            self.emit(EventKind::InterfaceDown { interface: &interface, reason: &reason });
        }
        self.publish();
        let mut stop_reason = None;
        let mut control_open = true;
        loop {
            tokio::select! {
                message = from_capture.recv() => {
                    match message {
                        Some(FromCapture::Window(worker, w)) => self.windows.push(worker, false, *w),
                        Some(FromCapture::Final(worker, w)) => self.windows.push(worker, true, *w),
                        // Every worker captures every interface: the first one tells.
                        Some(FromCapture::Link(0, change)) => self.link(change),
                        Some(FromCapture::Link(..)) => {}
                        None => return Err("the capture threads ended".into()),
                    }
                    while let Some((last, w)) = self.windows.next() {
                        self.window(w);
                        if last {
                            let reason = stop_reason.unwrap_or(StopReason::CaptureEnded);
                            self.emit(EventKind::Stop { reason });
                            log(&format!("stopped ({})", reason.as_str()));
                            return Ok(());
                        }
                    }
                },
                asked = control.recv(), if control_open => match asked {
                    Some(Control::Reload) => self.reload(),
                    Some(Control::Stop(reason)) => {
                        if stop_reason.is_none() {
                            stop_reason = Some(reason);
                            self.tell_workers(|| ToCapture::Stop);
                        }
                    }
                    None => control_open = false,
                },
            }
        }
    }

    /// Send every capture worker what `message` makes.
    fn tell_workers(&self, message: impl Fn() -> ToCapture) {
        for worker in &self.to_capture {
            let _ = worker.send(message());
        }
    }

    fn emit(&mut self, kind: EventKind<'_>) {
        if let Err(e) = self.events.write(event(kind, Some(kernel_clock()))) {
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
                self.emit(EventKind::InterfaceDown { interface: &change.interface, reason });
            }
            None => {
                let down_s = interface
                    .and_then(|i| {
                        i.reopens += 1;
                        i.down.take()
                    })
                    .map(|(since, _)| change.at.since(since) / 1_000_000);
                self.emit(EventKind::InterfaceUp { interface: &change.interface, down_s });
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
            // Through a JSON value: its keys come out sorted, as docs/status.md shows them.
            (
                Output::Status,
                d.status.as_str(),
                serde_json::to_value(s.status()).and_then(|v| serde_json::to_vec_pretty(&v)),
            ),
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
            &mut self.recent,
        );
        for v in &verdicts {
            self.emit(EventKind::Verdict { verdict: v });
        }
        let s = &mut self.state;
        s.updated = Some(w.window.end);
        s.windows += 1;
        s.interfaces = w.interfaces;
        s.worker_packets = self.windows.packets_by_worker();
        s.active_flows = w.snapshot.active_flows;
        s.max_flows = w.snapshot.max_flows;
        s.evicted = w.snapshot.table.evicted;
        s.refused = w.snapshot.table.refused;
        s.unreported = w.snapshot.unreported_flows;
        s.set_catalogue(&w.catalogue);
        s.record_window(w.window, &flows, &w.catalogue, &verdicts);
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
}
