//! A service's own history, the second reference (ARCHITECTURE.md): per hour of day (UTC), an
//! HdrHistogram of the goodput of its bulk transfers (kbit/s, two significant digits). When a
//! window has no comparable control, or as context when it has, a verdict's evidence shows the
//! service's usual rate at that hour next to the current one.
//!
//! Kept small: at most 24 histograms per service, each with a few hundred buckets at most, and
//! saved as JSON pairs of (value, count) (`analyze --history FILE` loads and updates it; the
//! daemon keeps one in RAM).

use std::collections::BTreeMap;
use std::path::Path;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Goodput range recorded, kbit/s.
const MAX_KBPS: u64 = 100_000_000;
/// Samples at an hour before it counts as a baseline.
pub const MIN_SAMPLES: u64 = 5;

#[derive(Debug, Default)]
pub struct History {
    services: BTreeMap<String, Vec<Option<Histogram<u64>>>>,
}

/// The file format: service → hour → [[kbit/s, count], ...].
#[derive(Serialize, Deserialize)]
struct Saved {
    schema: String,
    services: BTreeMap<String, BTreeMap<u8, Vec<(u64, u64)>>>,
}

const SCHEMA: &str = "throttlewatch.history/1";

/// The baseline of one service at one hour.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Baseline {
    pub hour_utc: u8,
    pub samples: u64,
    pub p50_kbps: u64,
    pub p90_kbps: u64,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_KBPS, 2).expect("static bounds are valid")
}

impl History {
    /// Record one bulk transfer's goodput at a Unix time.
    pub fn record(&mut self, service: &str, unix_s: u64, goodput_bps: f64) {
        let hour = ((unix_s / 3600) % 24) as usize;
        let slots = self.services.entry(service.to_string()).or_insert_with(|| vec![None; 24]);
        let kbps = ((goodput_bps / 1000.0).round() as u64).clamp(1, MAX_KBPS);
        slots[hour].get_or_insert_with(histogram).saturating_record(kbps);
    }

    pub fn baseline(&self, service: &str, unix_s: u64) -> Option<Baseline> {
        let hour = ((unix_s / 3600) % 24) as u8;
        let h = self.services.get(service)?.get(usize::from(hour))?.as_ref()?;
        (h.len() >= MIN_SAMPLES).then(|| Baseline {
            hour_utc: hour,
            samples: h.len(),
            p50_kbps: h.value_at_quantile(0.5),
            p90_kbps: h.value_at_quantile(0.9),
        })
    }

    pub fn load(path: &Path) -> Result<History, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(History::default()),
            Err(e) => return Err(format!("{}: cannot read the history: {e}", path.display())),
        };
        let saved: Saved = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a history file: {e}", path.display()))?;
        if saved.schema != SCHEMA {
            return Err(format!(
                "{}: schema {:?}, expected {SCHEMA}",
                path.display(),
                saved.schema
            ));
        }
        let mut history = History::default();
        for (service, hours) in saved.services {
            let slots = history.services.entry(service.clone()).or_insert_with(|| vec![None; 24]);
            for (hour, pairs) in hours {
                let slot = slots.get_mut(usize::from(hour)).ok_or_else(|| {
                    format!("{}: service {service}: hour {hour} is not 0..=23", path.display())
                })?;
                let h = slot.get_or_insert_with(histogram);
                for (kbps, count) in pairs {
                    h.saturating_record_n(kbps.clamp(1, MAX_KBPS), count);
                }
            }
        }
        Ok(history)
    }

    /// Write atomically (a temporary file renamed over the old one).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let services = self
            .services
            .iter()
            .map(|(service, slots)| {
                let hours = slots
                    .iter()
                    .enumerate()
                    .filter_map(|(hour, h)| {
                        let h = h.as_ref()?;
                        let pairs = h
                            .iter_recorded()
                            .map(|v| {
                                (h.highest_equivalent(v.value_iterated_to()), v.count_at_value())
                            })
                            .collect();
                        Some((hour as u8, pairs))
                    })
                    .collect();
                (service.clone(), hours)
            })
            .collect();
        let text = serde_json::to_string(&Saved { schema: SCHEMA.to_string(), services })
            .map_err(|e| e.to_string())?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| format!("{}: cannot write the history: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_per_hour_survives_a_save() {
        let mut h = History::default();
        let nine = 9 * 3600;
        for kbps in [900.0, 1000.0, 1100.0, 1000.0, 1000.0] {
            h.record("wa", nine + 10, kbps * 1000.0);
        }
        h.record("wa", 10 * 3600, 5e6);
        let b = h.baseline("wa", nine + 3000).unwrap();
        assert_eq!((b.hour_utc, b.samples), (9, 5));
        assert!((990..=1010).contains(&b.p50_kbps), "{b:?}");
        assert!(h.baseline("wa", 10 * 3600).is_none(), "one sample is no baseline");
        assert!(h.baseline("tg", nine).is_none());

        let dir = std::env::temp_dir().join(format!("tw-history-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("history.json");
        h.save(&path).unwrap();
        let back = History::load(&path).unwrap();
        assert_eq!(back.baseline("wa", nine), h.baseline("wa", nine));
        std::fs::write(&path, "{\"schema\": \"other\", \"services\": {}}").unwrap();
        assert!(History::load(&path).unwrap_err().contains("schema"));
        assert!(History::load(&dir.join("absent.json")).unwrap().services.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
