//! What the daemon writes (docs/): verdict events as JSON lines, the status file for LuCI
//! and scripts (replaced atomically), and Prometheus metrics (text exposition format, base
//! units, `_total` counters, low-cardinality labels: never an address or a port).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use serde_json::{Value, json};

use crate::capture::LiveStats;
use crate::classify::Catalogue;
use crate::detect::{Finding, Mechanism, Verdict};
use crate::time::Timestamp;

pub const EVENT_SCHEMA: &str = "throttlewatch.event/1";
pub const STATUS_SCHEMA: &str = "throttlewatch.status/1";

/// Capture counters of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceCounters {
    pub name: String,
    pub packets: u64,
    pub kernel: LiveStats,
}

/// Everything the outputs show after a window.
#[derive(Debug, Clone, Default)]
pub struct State {
    pub started: Option<Timestamp>,
    pub updated: Option<Timestamp>,
    pub window_s: u64,
    pub interfaces: Vec<InterfaceCounters>,
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
    /// Verdicts so far by (service, finding).
    pub verdict_counts: std::collections::BTreeMap<(String, Finding), u64>,
    pub reloads: u64,
    pub failed_reloads: u64,
}

impl State {
    pub fn set_catalogue(&mut self, catalogue: &Catalogue) {
        self.services =
            catalogue.services().iter().map(|s| (s.id.clone(), s.name.clone())).collect();
    }

    pub fn record_verdicts(&mut self, verdicts: Vec<Verdict>) {
        for v in &verdicts {
            *self.verdict_counts.entry((v.service.clone(), v.finding)).or_default() += 1;
        }
        self.verdicts = verdicts;
    }

    /// The status document, schema `throttlewatch.status/1`.
    pub fn status(&self) -> Value {
        json!({
            "schema": STATUS_SCHEMA,
            "version": env!("CARGO_PKG_VERSION"),
            "started": self.started,
            "updated": self.updated,
            "window_s": self.window_s,
            "interfaces": self.interfaces.iter().map(|i| json!({
                "name": i.name,
                "packets": i.packets,
                "kernel_drops": i.kernel.dropped,
                "interface_drops": i.kernel.if_dropped,
            })).collect::<Vec<_>>(),
            "flows": {
                "active": self.active_flows,
                "max": self.max_flows,
                "evicted": self.evicted,
                "refused": self.refused,
                "unreported": self.unreported,
            },
            "offload": {
                "active": self.offload_warning.is_some(),
                "warning": self.offload_warning,
            },
            "services": self.services.iter().map(|(id, name)| json!({ "id": id, "name": name }))
                .collect::<Vec<_>>(),
            "verdicts": self.verdicts,
        })
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
        let counts: Vec<(String, f64)> = self
            .verdict_counts
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

/// A label value with `\`, `"` and newlines escaped.
fn label(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// One event line.
pub fn event(kind: &str, at: Option<Timestamp>, fields: Value) -> String {
    let mut e = json!({ "schema": EVENT_SCHEMA, "type": kind, "at": at });
    if let (Some(obj), Value::Object(extra)) = (e.as_object_mut(), fields) {
        obj.extend(extra);
    }
    e.to_string()
}

/// Where events go: standard output, or a file appended to.
pub enum EventSink {
    Stdout,
    File(std::fs::File),
}

impl EventSink {
    pub fn open(path: &str) -> Result<EventSink, String> {
        if path == "-" {
            return Ok(EventSink::Stdout);
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map(EventSink::File)
            .map_err(|e| format!("events {path}: cannot open for appending: {e}"))
    }

    pub fn write(&mut self, line: &str) -> Result<(), String> {
        let result = match self {
            EventSink::Stdout => {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{line}").and_then(|()| out.flush())
            }
            EventSink::File(f) => writeln!(f, "{line}"),
        };
        result.map_err(|e| format!("cannot write an event: {e}"))
    }
}

/// Replace `path` with `contents` atomically: readers see the old or the new file, never a
/// part of one.
pub fn replace_file(path: &Path, contents: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

#[cfg(test)]
mod tests {
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
        }
    }

    #[test]
    fn status_and_metrics_show_the_latest_window() {
        let mut s = State { window_s: 60, max_flows: 100, active_flows: 7, ..State::default() };
        s.interfaces.push(InterfaceCounters {
            name: "br-lan".into(),
            packets: 1234,
            kernel: LiveStats { received: 1234, dropped: 5, if_dropped: 0 },
        });
        s.services.push(("whatsapp".into(), "WhatsApp".into()));
        s.record_verdicts(vec![verdict(Finding::Throttled)]);
        s.record_verdicts(vec![verdict(Finding::Throttled), verdict(Finding::None)]);
        let status = s.status();
        assert_eq!(status["schema"], STATUS_SCHEMA);
        assert_eq!(status["interfaces"][0]["kernel_drops"], 5);
        assert_eq!(status["flows"]["active"], 7);
        assert_eq!(status["verdicts"][0]["finding"], "throttled");
        assert_eq!(status["offload"]["active"], false);
        let m = s.metrics();
        assert!(m.contains("throttlewatch_kernel_drops_total{interface=\"br-lan\"} 5\n"), "{m}");
        assert!(m.contains(
            "throttlewatch_verdicts_total{service=\"whatsapp\",finding=\"throttled\"} 2\n"
        ));
        assert!(m.contains(
            "throttlewatch_finding_confidence{service=\"whatsapp\",finding=\"throttled\",mechanism=\"policing\"} 0.9\n"
        ));
        assert!(!m.contains("finding=\"none\",mechanism"), "only findings are current");
        // Every family is announced once with HELP and TYPE.
        for line in m.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(m.contains(&format!("# TYPE {name} ")), "{name}");
        }
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn events_are_one_json_object_per_line() {
        let line = event("stop", None, json!({ "reason": "SIGTERM" }));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!((v["schema"].as_str(), v["type"].as_str()), (Some(EVENT_SCHEMA), Some("stop")));
        assert_eq!(v["reason"], "SIGTERM");
        assert!(!line.contains('\n'));
    }
}
