//! What the daemon writes (docs/): verdict events as JSON lines, the status file for LuCI
//! and scripts (replaced atomically), and Prometheus metrics (text exposition format, base
//! units, `_total` counters, low-cardinality labels: never an address or a port).
//!
//! Faults of the outputs do not corrupt them and do not pass unseen:
//! - an event is written whole or not at all: its line goes to the file in one `write`, and a
//!   short write (a full disk) is cut back to the file's previous length;
//! - every failed write counts, by output, in the status and the metrics; events that could
//!   not be written are counted, and the next event written carries `events_lost` (how many,
//!   since when, why);
//! - the events file is bounded: past `events_max_kib` it is renamed to `PATH.1` (replacing
//!   the previous one) and a new file is begun, so at most twice the cap is kept; it is also
//!   reopened on every SIGHUP, after logrotate or an administrator moved it away.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::capture::LiveStats;
use crate::classify::{Catalogue, Role};
use crate::detect::{Finding, Mechanism, Verdict, Window};
use crate::pipeline::FinishedFlow;
use crate::time::Timestamp;

pub const EVENT_SCHEMA: &str = "throttlewatch.event/1";
pub const STATUS_SCHEMA: &str = "throttlewatch.status/1";

/// Capture counters and state of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceCounters {
    pub name: String,
    pub packets: u64,
    pub kernel: LiveStats,
    /// Since when and why the interface is down (vanished, or not there yet); `None`: up.
    pub down: Option<(Timestamp, String)>,
    /// Times capture on it began again after it was down (or missing at start).
    pub reopens: u64,
}

/// Windows of each service the status keeps for the LuCI page's chart.
pub const RECENT_WINDOWS: usize = 12;

/// One window of a service, as the status page charts it (`services[].recent[]`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WindowPoint {
    pub end: Timestamp,
    /// A finding of the service's verdicts in the window if one had any, else
    /// `inconclusive` if one was, else `none`.
    pub finding: Finding,
    /// Bits per second towards the clients over the window: the service's flows, and the
    /// control flows (the ordinary traffic it is compared with).
    pub target_bps: f64,
    pub control_bps: f64,
}

/// Everything the outputs show after a window.
#[derive(Debug, Clone, Default)]
pub struct State {
    pub started: Option<Timestamp>,
    pub updated: Option<Timestamp>,
    pub window_s: u64,
    pub interfaces: Vec<InterfaceCounters>,
    /// Packets each capture worker measured, over every interface.
    pub worker_packets: Vec<u64>,
    pub active_flows: usize,
    pub max_flows: usize,
    pub evicted: u64,
    pub refused: u64,
    /// Flows that finished between two windows beyond what a window keeps.
    pub unreported: u64,
    pub windows: u64,
    pub offload_warning: Option<String>,
    /// (id, name) of every catalogue service.
    pub services: Vec<(String, String)>,
    /// The latest window's verdicts.
    pub verdicts: Vec<Verdict>,
    /// The latest [`RECENT_WINDOWS`] windows with a verdict, by service id.
    pub recent: BTreeMap<String, Vec<WindowPoint>>,
    /// Verdicts so far by (service, finding).
    pub verdict_counts: std::collections::BTreeMap<(String, Finding), u64>,
    pub reloads: u64,
    pub failed_reloads: u64,
    /// Failed writes by output.
    pub output_errors: BTreeMap<Output, u64>,
    /// Events that could not be written.
    pub events_lost: u64,
    pub last_output_error: Option<String>,
}

/// What the daemon writes, for its error counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    Events,
    Status,
    MetricsFile,
    History,
}

impl Output {
    const ALL: [Output; 4] = [Output::Events, Output::Status, Output::MetricsFile, Output::History];

    pub fn as_str(self) -> &'static str {
        match self {
            Output::Events => "events",
            Output::Status => "status",
            Output::MetricsFile => "metrics_file",
            Output::History => "history",
        }
    }
}

impl State {
    pub fn set_catalogue(&mut self, catalogue: &Catalogue) {
        self.services =
            catalogue.services().iter().map(|s| (s.id.clone(), s.name.clone())).collect();
    }

    /// Failed writes of every output.
    fn output_error_counts(&self) -> BTreeMap<Output, u64> {
        Output::ALL
            .into_iter()
            .map(|o| (o, self.output_errors.get(&o).copied().unwrap_or(0)))
            .collect()
    }

    /// Count a failed write of `output`.
    pub fn output_failed(&mut self, output: Output, error: &str) {
        *self.output_errors.entry(output).or_default() += 1;
        self.last_output_error = Some(error.to_string());
    }

    /// A window's point on each judged service's chart: its finding and the downstream
    /// throughput of its flows and of the control flows in the window (each flow's part in
    /// it: what it carried since the previous window).
    pub fn record_window(
        &mut self,
        window: Window,
        flows: &[&FinishedFlow],
        catalogue: &Catalogue,
        verdicts: &[Verdict],
    ) {
        let secs = (window.end.since(window.start) as f64 / 1e6).max(1e-3);
        let down = |f: &FinishedFlow| {
            let before = f.prior.as_ref().map_or(0, |p| p.dirs.down.bytes);
            f.measures.dirs.down.bytes.saturating_sub(before) as f64 * 8.0 / secs
        };
        let control_bps: f64 =
            flows.iter().filter(|f| f.role == Role::Control).map(|f| down(f)).sum();
        for v in verdicts {
            let points = self.recent.entry(v.service.clone()).or_default();
            if points.last().is_some_and(|p| p.end == window.end) {
                continue;
            }
            let mine = verdicts.iter().filter(|o| o.service == v.service);
            let finding = mine
                .map(|o| o.finding)
                .min_by_key(|f| match f {
                    Finding::None => 2,
                    Finding::Inconclusive => 1,
                    _ => 0,
                })
                .unwrap_or(Finding::None);
            let target_bps = flows
                .iter()
                .filter(|f| {
                    f.role == Role::Target
                        && f.class.service.is_some_and(|s| catalogue.service(s).id == v.service)
                })
                .map(|f| down(f))
                .sum();
            points.push(WindowPoint { end: window.end, finding, target_bps, control_bps });
            if points.len() > RECENT_WINDOWS {
                points.remove(0);
            }
        }
    }

    pub fn record_verdicts(&mut self, verdicts: Vec<Verdict>) {
        for v in &verdicts {
            *self.verdict_counts.entry((v.service.clone(), v.finding)).or_default() += 1;
        }
        self.verdicts = verdicts;
    }

    /// The status document, schema `throttlewatch.status/1` (docs/status.md).
    pub fn status(&self) -> Status<'_> {
        Status {
            schema: STATUS_SCHEMA,
            version: env!("CARGO_PKG_VERSION"),
            started: self.started,
            updated: self.updated,
            window_s: self.window_s,
            interfaces: (self.interfaces.iter())
                .map(|i| InterfaceStatus {
                    name: &i.name,
                    up: i.down.is_none(),
                    down_since: i.down.as_ref().map(|d| d.0),
                    down_reason: i.down.as_ref().map(|d| d.1.as_str()),
                    reopens: i.reopens,
                    packets: i.packets,
                    kernel_drops: i.kernel.dropped,
                    interface_drops: i.kernel.if_dropped,
                })
                .collect(),
            flows: FlowStatus {
                active: self.active_flows,
                max: self.max_flows,
                evicted: self.evicted,
                refused: self.refused,
                unreported: self.unreported,
            },
            offload: OffloadStatus {
                active: self.offload_warning.is_some(),
                warning: self.offload_warning.as_deref(),
            },
            services: (self.services.iter())
                .map(|(id, name)| ServiceStatus {
                    id,
                    name,
                    recent: self.recent.get(id).map_or(&[], Vec::as_slice),
                })
                .collect(),
            outputs: OutputStatus {
                errors: self.output_error_counts(),
                events_lost: self.events_lost,
                last_error: self.last_output_error.as_deref(),
            },
            verdicts: &self.verdicts,
        }
    }

    /// Prometheus text exposition format.
    pub fn metrics(&self) -> String {
        let mut m = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
            let _ = writeln!(m, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(m, "{name}{labels} {value}");
            }
        };
        let iface = |f: fn(&InterfaceCounters) -> u64| -> Vec<(String, f64)> {
            self.interfaces
                .iter()
                .map(|i| (format!("{{interface=\"{}\"}}", label(&i.name)), f(i) as f64))
                .collect()
        };
        family(
            "throttlewatch_build_info",
            "gauge",
            "The running version.",
            &[(format!("{{version=\"{}\"}}", env!("CARGO_PKG_VERSION")), 1.0)],
        );
        family(
            "throttlewatch_interface_up",
            "gauge",
            "1 while the interface is captured on, 0 while it is down or missing.",
            &iface(|i| u64::from(i.down.is_none())),
        );
        family(
            "throttlewatch_interface_reopens_total",
            "counter",
            "Times capture on the interface began again after it was down or missing at start.",
            &iface(|i| i.reopens),
        );
        family(
            "throttlewatch_packets_total",
            "counter",
            "Packets read from the capture.",
            &iface(|i| i.packets),
        );
        family(
            "throttlewatch_kernel_drops_total",
            "counter",
            "Packets the kernel dropped because the capture buffer was full.",
            &iface(|i| i.kernel.dropped),
        );
        family(
            "throttlewatch_interface_drops_total",
            "counter",
            "Packets the interface or its driver dropped.",
            &iface(|i| i.kernel.if_dropped),
        );
        let workers: Vec<(String, f64)> = (self.worker_packets.iter().enumerate())
            .map(|(w, &n)| (format!("{{worker=\"{w}\"}}"), n as f64))
            .collect();
        family(
            "throttlewatch_worker_packets_total",
            "counter",
            "Packets a capture worker measured, over every interface (capture_workers).",
            &workers,
        );
        let one = |v: f64| vec![(String::new(), v)];
        family(
            "throttlewatch_flows_active",
            "gauge",
            "Flows in the flow table.",
            &one(self.active_flows as f64),
        );
        family(
            "throttlewatch_flows_max",
            "gauge",
            "Capacity of the flow table.",
            &one(self.max_flows as f64),
        );
        family(
            "throttlewatch_flows_evicted_total",
            "counter",
            "Idle flows pushed out of the full flow table.",
            &one(self.evicted as f64),
        );
        family(
            "throttlewatch_flows_refused_total",
            "counter",
            "Packets of new flows refused while the table was full of active flows.",
            &one(self.refused as f64),
        );
        family(
            "throttlewatch_flows_unreported_total",
            "counter",
            "Flows that finished between two windows beyond what a window keeps.",
            &one(self.unreported as f64),
        );
        family(
            "throttlewatch_windows_total",
            "counter",
            "Evaluation windows completed.",
            &one(self.windows as f64),
        );
        family(
            "throttlewatch_window_seconds",
            "gauge",
            "Length of an evaluation window.",
            &one(self.window_s as f64),
        );
        family(
            "throttlewatch_offload_active",
            "gauge",
            "1 when flow offloading may hide forwarded traffic from the capture.",
            &one(f64::from(u8::from(self.offload_warning.is_some()))),
        );
        family(
            "throttlewatch_reloads_total",
            "counter",
            "Configuration reloads (SIGHUP), by result.",
            &[
                ("{result=\"ok\"}".into(), self.reloads as f64),
                ("{result=\"failed\"}".into(), self.failed_reloads as f64),
            ],
        );
        family(
            "throttlewatch_output_errors_total",
            "counter",
            "Failed writes of an output (events, status, metrics_file, history).",
            &Output::ALL.map(|o| {
                let n = self.output_errors.get(&o).copied().unwrap_or(0);
                (format!("{{output=\"{}\"}}", o.as_str()), n as f64)
            }),
        );
        family(
            "throttlewatch_events_lost_total",
            "counter",
            "Events that could not be written.",
            &one(self.events_lost as f64),
        );
        // Every catalogue service's counters exist from the start, at 0: Prometheus's
        // `increase()` sees no increase in a series that first appears at 1, so a router's
        // first verdict of a kind would otherwise go uncounted.
        let mut all: BTreeMap<(&str, Finding), u64> = self
            .services
            .iter()
            .flat_map(|(id, _)| FINDINGS.map(|f| ((id.as_str(), f), 0)))
            .collect();
        all.extend(self.verdict_counts.iter().map(|((s, f), n)| ((s.as_str(), *f), *n)));
        let counts: Vec<(String, f64)> = all
            .iter()
            .map(|((s, f), n)| {
                (
                    format!("{{service=\"{}\",finding=\"{}\"}}", label(s), label(f.as_str())),
                    *n as f64,
                )
            })
            .collect();
        family("throttlewatch_verdicts_total", "counter", "Verdicts by finding.", &counts);
        let current: Vec<(String, f64)> = self
            .verdicts
            .iter()
            .filter(|v| v.is_finding())
            .map(|v| {
                (
                    format!(
                        "{{service=\"{}\",finding=\"{}\",mechanism=\"{}\"}}",
                        label(&v.service),
                        label(v.finding.as_str()),
                        label(v.mechanism.map_or("", Mechanism::as_str))
                    ),
                    v.confidence,
                )
            })
            .collect();
        family(
            "throttlewatch_finding_confidence",
            "gauge",
            "Findings of the latest window, with their confidence.",
            &current,
        );
        m
    }
}

/// Every finding, for the verdict counters of [`State::metrics`].
const FINDINGS: [Finding; 7] = [
    Finding::Throttled,
    Finding::Reset,
    Finding::Stalled,
    Finding::Blocked,
    Finding::CallDegraded,
    Finding::Inconclusive,
    Finding::None,
];

/// A label value with `\`, `"` and newlines escaped.
fn label(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The status document (docs/status.md lists every field).
#[derive(Debug, serde::Serialize)]
pub struct Status<'a> {
    pub schema: &'static str,
    pub version: &'static str,
    pub started: Option<Timestamp>,
    pub updated: Option<Timestamp>,
    pub window_s: u64,
    pub interfaces: Vec<InterfaceStatus<'a>>,
    pub flows: FlowStatus,
    pub offload: OffloadStatus<'a>,
    pub services: Vec<ServiceStatus<'a>>,
    pub outputs: OutputStatus<'a>,
    pub verdicts: &'a [Verdict],
}

/// `interfaces[]` of the status.
#[derive(Debug, serde::Serialize)]
pub struct InterfaceStatus<'a> {
    pub name: &'a str,
    pub up: bool,
    pub down_since: Option<Timestamp>,
    pub down_reason: Option<&'a str>,
    pub reopens: u64,
    pub packets: u64,
    pub kernel_drops: u64,
    pub interface_drops: u64,
}

/// `flows` of the status.
#[derive(Debug, serde::Serialize)]
pub struct FlowStatus {
    pub active: usize,
    pub max: usize,
    pub evicted: u64,
    pub refused: u64,
    pub unreported: u64,
}

/// `offload` of the status.
#[derive(Debug, serde::Serialize)]
pub struct OffloadStatus<'a> {
    pub active: bool,
    pub warning: Option<&'a str>,
}

/// `services[]` of the status.
#[derive(Debug, serde::Serialize)]
pub struct ServiceStatus<'a> {
    pub id: &'a str,
    pub name: &'a str,
    /// Its latest windows, oldest first (the LuCI page's chart).
    pub recent: &'a [WindowPoint],
}

/// `outputs` of the status.
#[derive(Debug, serde::Serialize)]
pub struct OutputStatus<'a> {
    pub errors: BTreeMap<Output, u64>,
    pub events_lost: u64,
    pub last_error: Option<&'a str>,
}

/// Why the daemon stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum StopReason {
    #[serde(rename = "SIGTERM")]
    Sigterm,
    #[serde(rename = "SIGINT")]
    Sigint,
    /// The capture thread ended without being asked to.
    #[serde(rename = "capture ended")]
    CaptureEnded,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Sigterm => "SIGTERM",
            StopReason::Sigint => "SIGINT",
            StopReason::CaptureEnded => "capture ended",
        }
    }
}

/// What an event says, by its `type` (docs/events.md lists every field).
#[derive(Debug, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind<'a> {
    /// The captures are open (and root given up).
    Start {
        version: &'static str,
        interfaces: &'a [String],
        window_s: u64,
        offload_warning: Option<&'a str>,
    },
    InterfaceDown {
        interface: &'a str,
        reason: &'a str,
    },
    InterfaceUp {
        interface: &'a str,
        /// Whole seconds it was down; `None` when it was not known to be down.
        down_s: Option<u64>,
    },
    Verdict {
        verdict: &'a Verdict,
    },
    Reload {
        needs_restart: &'a [&'static str],
        catalogue_changed: bool,
    },
    ReloadFailed {
        error: &'a str,
    },
    Stop {
        reason: StopReason,
    },
}

/// One event, schema `throttlewatch.event/1`.
#[derive(Debug, serde::Serialize)]
pub struct Event<'a> {
    pub schema: &'static str,
    #[serde(flatten)]
    pub kind: EventKind<'a>,
    /// When it was written (wall clock).
    pub at: Option<Timestamp>,
    /// Events lost before this one (only after a loss).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_lost: Option<Lost>,
}

/// One event, written `at`.
pub fn event(kind: EventKind<'_>, at: Option<Timestamp>) -> Event<'_> {
    Event { schema: EVENT_SCHEMA, kind, at, events_lost: None }
}

/// Events that could not be written, reported with the next one that is.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Lost {
    events: u64,
    /// The `at` of the first one.
    since: Option<Timestamp>,
    error: String,
}

enum Target {
    Stdout,
    File { path: PathBuf, file: std::fs::File },
}

/// Where events go: standard output, or a file appended to (see the module's guarantees).
pub struct EventSink {
    target: Target,
    /// Rotate the file before it would grow past this; 0: never.
    max_bytes: u64,
    lost: Option<Lost>,
    lost_total: u64,
}

fn open_append(path: &Path) -> Result<std::fs::File, String> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("events {}: cannot open for appending: {e}", path.display()))
}

impl EventSink {
    /// `path` ("-": standard output), rotated past `max_kib` KiB (0: never).
    pub fn open(path: &str, max_kib: u64) -> Result<EventSink, String> {
        let target = match path {
            "-" => Target::Stdout,
            path => Target::File { path: path.into(), file: open_append(Path::new(path))? },
        };
        Ok(EventSink { target, max_bytes: max_kib.saturating_mul(1024), lost: None, lost_total: 0 })
    }

    /// Open the path again (SIGHUP: logrotate may have moved the file away). The counts of
    /// lost events carry over.
    pub fn reopen(&mut self) -> Result<(), String> {
        if let Target::File { path, file } = &mut self.target {
            *file = open_append(path)?;
        }
        Ok(())
    }

    /// Go on at `other` (a reload changed the path or the cap); the counts carry over.
    pub fn replace(&mut self, other: EventSink) {
        self.target = other.target;
        self.max_bytes = other.max_bytes;
    }

    /// Events that could not be written so far.
    pub fn lost_total(&self) -> u64 {
        self.lost_total
    }

    /// Write one event as a line, whole or not at all. After lost events, the line carries
    /// `events_lost`. An error means the event was lost, or (`cannot rotate`) that it was
    /// written but the file could not be rotated.
    pub fn write(&mut self, mut event: Event<'_>) -> Result<(), String> {
        event.events_lost.clone_from(&self.lost);
        // Through a JSON value: its keys come out sorted, as the schema's examples show.
        let mut line = serde_json::to_value(&event).map_err(|e| e.to_string())?.to_string();
        line.push('\n');
        let mut rotation = Ok(());
        let written = match &mut self.target {
            Target::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(line.as_bytes()).and_then(|()| out.flush()).map_err(|e| e.to_string())
            }
            Target::File { path, file } => {
                rotation = rotate_if_full(path, file, self.max_bytes, line.len() as u64);
                append_whole(file, line.as_bytes())
            }
        };
        match written {
            Ok(()) => {
                self.lost = None;
                rotation
            }
            Err(e) => {
                self.lost_total += 1;
                match &mut self.lost {
                    Some(lost) => lost.events += 1,
                    None => {
                        self.lost = Some(Lost { events: 1, since: event.at, error: e.clone() });
                    }
                }
                Err(format!("cannot write an event: {e}"))
            }
        }
    }
}

/// Past the cap, `path` becomes `path.1` and a new file is begun. A file that holds nothing
/// yet takes the line whatever its size.
fn rotate_if_full(
    path: &Path,
    file: &mut std::fs::File,
    max_bytes: u64,
    line_bytes: u64,
) -> Result<(), String> {
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if max_bytes == 0 || size == 0 || size.saturating_add(line_bytes) <= max_bytes {
        return Ok(());
    }
    let mut rotated = path.as_os_str().to_owned();
    rotated.push(".1");
    std::fs::rename(path, &rotated).map_err(|e| {
        format!("events {}: cannot rotate (the file grows past its cap): {e}", path.display())
    })?;
    *file = open_append(path)?;
    Ok(())
}

/// Append `bytes` with one `write`; a short write is cut back to the previous length, so the
/// file never holds part of a line.
fn append_whole(file: &mut std::fs::File, bytes: &[u8]) -> Result<(), String> {
    let before = file.metadata().map_err(|e| e.to_string())?.len();
    let cut_back = |file: &std::fs::File| file.set_len(before).map_err(|e| e.to_string());
    match file.write(bytes) {
        Ok(n) if n == bytes.len() => Ok(()),
        Ok(n) => {
            cut_back(file)?;
            Err(format!("only {n} of {} bytes fitted (disk full?)", bytes.len()))
        }
        // A failed write wrote nothing.
        Err(e) => Err(e.to_string()),
    }
}

/// Replace `path` with `contents` atomically: readers see the old or the new file, never a
/// part of one. A failed write leaves no temporary file behind.
pub fn replace_file(path: &Path, contents: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).and_then(|()| std::fs::rename(&tmp, path)).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: cannot write: {e}", path.display())
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::detect::Window;

    fn verdict(finding: Finding) -> Verdict {
        let t = Timestamp::from_micros(1_790_000_000_000_000);
        Verdict {
            service: "whatsapp".into(),
            window: Window { start: t, end: t.add_micros(60_000_000) },
            finding,
            mechanism: Some(Mechanism::Policing),
            confidence: 0.9,
            evidence: json!({ "rate_bps": 128000 }),
            flows: vec![3],
            summary: "whatsapp: downloads policed at ~128 kbit/s".into(),
            next_step: crate::detect::NextStep::KeepEvidence,
        }
    }

    /// A state with every field of the status set: an interface up, one down, a service,
    /// verdicts, an offload warning and a failed write.
    fn full_state() -> State {
        let mut s = State { window_s: 60, max_flows: 100, active_flows: 7, ..State::default() };
        s.interfaces.push(InterfaceCounters {
            name: "br-lan".into(),
            packets: 1234,
            kernel: LiveStats { received: 1234, dropped: 5, if_dropped: 0 },
            down: None,
            reopens: 0,
        });
        let since = Timestamp::from_micros(1_790_000_000_000_000);
        s.interfaces.push(InterfaceCounters {
            name: "wlan0".into(),
            packets: 0,
            kernel: LiveStats::default(),
            down: Some((since, "the interface disappeared".into())),
            reopens: 2,
        });
        s.services.push(("whatsapp".into(), "WhatsApp".into()));
        let point = WindowPoint {
            end: since.add_micros(60_000_000),
            finding: Finding::Throttled,
            target_bps: 128_000.0,
            control_bps: 3_300_000.0,
        };
        s.recent.insert("whatsapp".into(), vec![point]);
        s.record_verdicts(vec![verdict(Finding::Throttled)]);
        s.record_verdicts(vec![verdict(Finding::Throttled), verdict(Finding::None)]);
        s.offload_warning = Some("flow offloading is on".into());
        s.output_failed(Output::MetricsFile, "disk full");
        s
    }

    /// Each window judged gives each service with a verdict a point: the worst finding of its
    /// verdicts, and the downstream rates of its flows and of the control flows, each flow
    /// counted for its part in the window; the oldest points go beyond the twelfth.
    #[test]
    fn recent_windows_chart_each_service() {
        use crate::detect::synthetic::{CTL, MSG, Rng, Sim};
        let mut sim = Sim::default();
        let mut rng = Rng::new(5);
        // 30 s: a policed 128 kbit/s download from the messenger all along, control downloads
        // at 4 Mbit/s every 3 s.
        sim.downloads(MSG, (0, 1, 1), 40, (470_000, 128_000.0, 0.0), &mut rng);
        sim.downloads(CTL, (500, 3_000, 10), 30, (300_000, 4e6, 0.0), &mut rng);
        let cfg = crate::config::DetectConfig { window_s: 10, ..Default::default() };
        let mut state = State::default();
        let mut windows = 0;
        let mut recent = crate::detect::Recent::default();
        sim.windows(&cfg, |flows, window, catalogue| {
            let verdicts =
                crate::detect::evaluate_window(flows, window, catalogue, &cfg, None, &mut recent);
            state.record_window(window, flows, catalogue, &verdicts);
            windows += 1;
        });
        let points = &state.recent["msg"];
        assert_eq!(points.len(), windows, "{points:?}");
        assert!(windows >= 3, "{points:?}");
        // The whole windows in the middle: the policed download's rate, the control's
        // 300 kB per 3 s.
        for p in &points[1..points.len() - 1] {
            assert!((p.target_bps / 128_000.0 - 1.0).abs() < 0.2, "{p:?}");
            assert!((p.control_bps / 800_000.0 - 1.0).abs() < 0.35, "{p:?}");
        }
        assert!(points.windows(2).all(|w| w[0].end < w[1].end));
        // A point per window, at most the latest twelve.
        let keep = points[0].clone();
        state.recent.get_mut("msg").unwrap().clear();
        let catalogue = crate::classify::CatalogueBuilder::new("t").finish();
        for i in 0..20u64 {
            let v = Verdict {
                window: Window { start: keep.end, end: keep.end.add_micros(i + 1) },
                ..verdict(Finding::None)
            };
            let v = Verdict { service: "msg".into(), ..v };
            state.record_window(
                v.window,
                &[],
                &catalogue,
                &[v.clone(), Verdict { finding: Finding::Inconclusive, ..v }],
            );
        }
        let points = &state.recent["msg"];
        assert_eq!(points.len(), RECENT_WINDOWS);
        assert_eq!(points[0].end, keep.end.add_micros(9));
        assert!(points.iter().all(|p| p.finding == Finding::Inconclusive), "the worse of two");
    }

    #[test]
    fn status_and_metrics_show_the_latest_window() {
        let s = full_state();
        let status = serde_json::to_value(s.status()).unwrap();
        // The typed document is, byte for byte, the one the daemon built with `json!` before.
        assert_eq!(status.to_string(), former_status(&s).to_string());
        assert_eq!(status["schema"], STATUS_SCHEMA);
        assert_eq!(status["interfaces"][0]["kernel_drops"], 5);
        assert_eq!(status["interfaces"][0]["up"], true);
        assert_eq!(status["interfaces"][1]["up"], false);
        assert_eq!(status["interfaces"][1]["down_reason"], "the interface disappeared");
        assert_eq!(status["interfaces"][1]["down_since"], "2026-09-21T14:13:20.000000Z");
        assert_eq!(status["flows"]["active"], 7);
        assert_eq!(status["verdicts"][0]["finding"], "throttled");
        assert_eq!(status["offload"]["active"], true);
        assert_eq!(status["outputs"]["errors"]["metrics_file"], 1);
        assert_eq!(status["outputs"]["errors"]["events"], 0);
        let m = s.metrics();
        assert!(m.contains("throttlewatch_kernel_drops_total{interface=\"br-lan\"} 5\n"), "{m}");
        assert!(m.contains("throttlewatch_interface_up{interface=\"br-lan\"} 1\n"), "{m}");
        assert!(m.contains("throttlewatch_interface_up{interface=\"wlan0\"} 0\n"), "{m}");
        assert!(m.contains("throttlewatch_interface_reopens_total{interface=\"wlan0\"} 2\n"));
        assert!(m.contains(
            "throttlewatch_verdicts_total{service=\"whatsapp\",finding=\"throttled\"} 2\n"
        ));
        assert!(m.contains(
            "throttlewatch_finding_confidence{service=\"whatsapp\",finding=\"throttled\",mechanism=\"policing\"} 0.9\n"
        ));
        assert!(!m.contains("finding=\"none\",mechanism"), "only findings are current");
        // Counters of findings not seen yet exist at 0, for every catalogue service.
        assert!(
            m.contains("throttlewatch_verdicts_total{service=\"whatsapp\",finding=\"none\"} 1\n")
        );
        assert!(m.contains(
            "throttlewatch_verdicts_total{service=\"whatsapp\",finding=\"blocked\"} 0\n"
        ));
        assert_eq!(m.matches("throttlewatch_verdicts_total{").count(), FINDINGS.len(), "{m}");
        // A new finding breaks this match: add it to FINDINGS too.
        for f in FINDINGS {
            match f {
                Finding::Throttled
                | Finding::Reset
                | Finding::Stalled
                | Finding::Blocked
                | Finding::CallDegraded
                | Finding::Inconclusive
                | Finding::None => {}
            }
        }
        // Every family is announced once with HELP and TYPE.
        for line in m.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(m.contains(&format!("# TYPE {name} ")), "{name}");
        }
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    /// The status document as the daemon built it with `json!` before it was typed: the
    /// reference the typed one must equal.
    fn former_status(s: &State) -> Value {
        json!({
            "schema": STATUS_SCHEMA,
            "version": env!("CARGO_PKG_VERSION"),
            "started": s.started,
            "updated": s.updated,
            "window_s": s.window_s,
            "interfaces": s.interfaces.iter().map(|i| json!({
                "name": i.name,
                "up": i.down.is_none(),
                "down_since": i.down.as_ref().map(|d| d.0),
                "down_reason": i.down.as_ref().map(|d| &d.1),
                "reopens": i.reopens,
                "packets": i.packets,
                "kernel_drops": i.kernel.dropped,
                "interface_drops": i.kernel.if_dropped,
            })).collect::<Vec<_>>(),
            "flows": {
                "active": s.active_flows,
                "max": s.max_flows,
                "evicted": s.evicted,
                "refused": s.refused,
                "unreported": s.unreported,
            },
            "offload": { "active": s.offload_warning.is_some(), "warning": s.offload_warning },
            "services": s.services.iter()
                .map(|(id, name)| json!({ "id": id, "name": name, "recent": s.recent.get(id).cloned().unwrap_or_default() }))
                .collect::<Vec<_>>(),
            "outputs": {
                "errors": Output::ALL
                    .map(|o| (o.as_str(), s.output_errors.get(&o).copied().unwrap_or(0)))
                    .into_iter().collect::<BTreeMap<_, _>>(),
                "events_lost": s.events_lost,
                "last_error": s.last_output_error,
            },
            "verdicts": s.verdicts,
        })
    }

    /// The path of every field in `v` that is not an object (`a.b`, `list[].c`); arrays are
    /// followed into their first item, except the verdicts (report.md documents them).
    fn paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (key, value) in map {
                    let path =
                        if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                    if !value.is_object() || key == "verdict" {
                        out.push(path.clone());
                    }
                    if key != "verdict" {
                        paths(value, &path, out);
                    }
                }
            }
            Value::Array(items) if !prefix.ends_with("verdicts") => {
                if let Some(first) = items.first() {
                    paths(first, &format!("{prefix}[]"), out);
                }
            }
            _ => {}
        }
    }

    /// The contract pages name every field the daemon writes: a field is named as its path
    /// (`flows.active`, `interfaces[]`), or by its key in the row of its parent.
    fn assert_documented(doc: &str, document: &Value) {
        let mut found = Vec::new();
        paths(document, "", &mut found);
        for path in found {
            let named =
                |p: &str| doc.contains(&format!("`{p}`")) || doc.contains(&format!("`{p}[]`"));
            let (parent, key) = path.rsplit_once('.').unwrap_or(("", &path));
            let parent = parent.trim_end_matches("[]");
            let in_row = doc.lines().any(|l| {
                l.contains(&format!("`{key}`"))
                    && (parent.is_empty() || l.contains(&format!("`{parent}")))
            });
            assert!(named(&path) || in_row, "{path} is not documented");
        }
    }

    #[test]
    fn the_contract_pages_name_every_field() {
        let status = serde_json::to_value(full_state().status()).unwrap();
        assert_documented(include_str!("../../docs/status.md"), &status);
        let events = include_str!("../../docs/events.md");
        for (kind, _, name) in every_event(&verdict(Finding::Throttled)) {
            let mut e = event(kind, Some(Timestamp::from_micros(1)));
            e.events_lost = Some(Lost { events: 1, since: None, error: "full".into() });
            let value = serde_json::to_value(e).unwrap();
            assert!(events.contains(&format!("`{name}`")), "event type {name}");
            assert_documented(events, &value);
        }
    }

    /// One event of each type (and each stop reason), with the fields the daemon wrote with
    /// `json!` before they were typed, and the type's name.
    fn every_event(v: &Verdict) -> Vec<(EventKind<'_>, Value, &'static str)> {
        const INTERFACES: &[String] = &[];
        vec![
            (
                EventKind::Start {
                    version: "0.1.0",
                    interfaces: INTERFACES,
                    window_s: 60,
                    offload_warning: None,
                },
                json!({ "version": "0.1.0", "interfaces": INTERFACES, "window_s": 60,
                        "offload_warning": null }),
                "start",
            ),
            (
                EventKind::InterfaceDown { interface: "wlan0", reason: "gone" },
                json!({ "interface": "wlan0", "reason": "gone" }),
                "interface_down",
            ),
            (
                EventKind::InterfaceUp { interface: "wlan0", down_s: Some(3) },
                json!({ "interface": "wlan0", "down_s": 3 }),
                "interface_up",
            ),
            (EventKind::Verdict { verdict: v }, json!({ "verdict": v }), "verdict"),
            (
                EventKind::Reload { needs_restart: &["snaplen"], catalogue_changed: true },
                json!({ "needs_restart": ["snaplen"], "catalogue_changed": true }),
                "reload",
            ),
            (EventKind::ReloadFailed { error: "bad" }, json!({ "error": "bad" }), "reload_failed"),
            (
                EventKind::Stop { reason: StopReason::Sigterm },
                json!({ "reason": "SIGTERM" }),
                "stop",
            ),
            (EventKind::Stop { reason: StopReason::Sigint }, json!({ "reason": "SIGINT" }), "stop"),
            (
                EventKind::Stop { reason: StopReason::CaptureEnded },
                json!({ "reason": "capture ended" }),
                "stop",
            ),
        ]
    }

    /// Every event type, typed, is the line the daemon wrote with `json!` before.
    #[test]
    fn events_are_one_json_object_per_line_as_before() {
        let at = Some(Timestamp::from_micros(1_790_000_000_000_000));
        let v = verdict(Finding::Throttled);
        let cases = every_event(&v);
        for (kind, fields, name) in cases {
            let mut former = json!({ "schema": EVENT_SCHEMA, "type": name, "at": at });
            if let (Some(obj), Value::Object(extra)) = (former.as_object_mut(), fields) {
                obj.extend(extra);
            }
            let line = serde_json::to_value(event(kind, at)).unwrap().to_string();
            assert_eq!(line, former.to_string());
            assert!(!line.contains('\n'));
        }
    }

    fn lines(path: &Path) -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("every line is JSON"))
            .collect()
    }

    /// Past the cap the file becomes `.1` and a new one begins; a reopen follows a moved file.
    #[test]
    fn the_events_file_rotates_at_its_cap_and_reopens() {
        let dir = std::env::temp_dir().join(format!("tw-events-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.jsonl");
        let mut sink = EventSink::open(path.to_str().unwrap(), 1).unwrap();
        // Events numbered in their text, padded to 300 bytes.
        let numbered = |n: u64, pad: usize| format!("{n} {}", "x".repeat(pad));
        let write = |sink: &mut EventSink, text: &str| {
            sink.write(event(EventKind::ReloadFailed { error: text }, None)).unwrap()
        };
        let n = |e: &Value| -> u64 {
            e["error"].as_str().unwrap().split(' ').next().unwrap().parse().unwrap()
        };
        for i in 0..10 {
            write(&mut sink, &numbered(i, 300));
        }
        let (now, old) = (lines(&path), lines(&dir.join("events.jsonl.1")));
        assert!(std::fs::metadata(&path).unwrap().len() <= 1024);
        assert_eq!(n(now.last().unwrap()), 9);
        assert_eq!(n(old.last().unwrap()) + 1, n(&now[0]));
        // Moved away (logrotate), then reopened: later events go to a new file.
        std::fs::rename(&path, dir.join("moved")).unwrap();
        write(&mut sink, &numbered(10, 0));
        sink.reopen().unwrap();
        write(&mut sink, &numbered(11, 0));
        assert_eq!(n(lines(&dir.join("moved")).last().unwrap()), 10);
        assert_eq!(lines(&path).len(), 1);
        // A line longer than the cap still goes, into a file of its own.
        write(&mut sink, &numbered(12, 2000));
        assert_eq!(lines(&path).len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Writes that fail (here: /dev/full, the disk-full device) lose whole events, which
    /// the next written event reports.
    #[test]
    fn lost_events_are_counted_and_reported_by_the_next() {
        let mut sink = EventSink::open("/dev/full", 0).unwrap();
        for n in 0..3 {
            let at = Timestamp::from_micros(1_790_000_000_000_000 + n);
            let stop = EventKind::Stop { reason: StopReason::Sigterm };
            let err = sink.write(event(stop, Some(at))).unwrap_err();
            assert!(err.contains("No space left on device"), "{err}");
        }
        assert_eq!(sink.lost_total(), 3);
        let dir = std::env::temp_dir().join(format!("tw-lost-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.jsonl");
        sink.replace(EventSink::open(path.to_str().unwrap(), 0).unwrap());
        for _ in 0..2 {
            sink.write(event(EventKind::Stop { reason: StopReason::Sigint }, None)).unwrap();
        }
        let written = lines(&path);
        assert_eq!(written[0]["events_lost"]["events"], 3);
        assert_eq!(written[0]["events_lost"]["since"], "2026-09-21T14:13:20.000000Z");
        assert!(written[0]["events_lost"]["error"].as_str().unwrap().contains("No space"));
        assert!(written[1].get("events_lost").is_none(), "reported once");
        assert_eq!(sink.lost_total(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
