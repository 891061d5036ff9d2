//! Detect: the statistics stage that compares target flows with control flows in a window and
//! emits verdicts (DESIGN §5). The detectors are not written yet; this module fixes the shape
//! of a verdict so that the report contract (DESIGN §6) is stable from the first version.

use serde::Serialize;

use crate::time::Timestamp;

/// One finding about one service in one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub service: String,
    pub window: Window,
    /// `throttled`, `reset`, `stalled`, `blocked`, `call_degraded`, `inconclusive` or `none`.
    pub finding: String,
    /// `policing`, `shaping`, `rst_injection`, `freeze` or `drop`, where known.
    pub mechanism: Option<String>,
    /// 0–1.
    pub confidence: f64,
    pub evidence: serde_json::Value,
    /// Flow ids the verdict rests on.
    pub flows: Vec<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Verdict {
    /// Findings other than `none` and `inconclusive` make `--fail-on-finding` exit 3.
    pub fn is_finding(&self) -> bool {
        self.finding != "none" && self.finding != "inconclusive"
    }
}
