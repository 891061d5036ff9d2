//! Defaults and limits, in one place: the pipeline's ([`PipelineConfig`], from the core
//! crate), the detectors' ([`DetectConfig`]) and the daemon's ([`DaemonConfig`]), read from a
//! TOML file or, on OpenWrt, from a UCI file ([`uci`]). The CLI resolves them once; nothing
//! else holds a default.

pub mod uci;

pub use throttlewatch_core::config::*;

/// Thresholds of the detectors (docs/detectors.md), with the literature's defaults. Read from the
/// `[detect]` table of a configuration file (`--config`); every key is optional, unknown keys
/// are errors.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectConfig {
    /// Evaluation window on packet time; each window judges the part of every flow that lies
    /// in it.
    pub window_s: u64,
    /// A TCP flow is bulk when one direction carries at least this much payload.
    pub bulk_min_bytes: u64,
    /// Control flows are comparable when their minimum RTT is within this factor of the
    /// target flows', or within `rtt_tolerance_ms` of it (a far server is not a throttled one;
    /// at sub-millisecond RTTs a ratio alone says nothing).
    pub rtt_ratio: f64,
    pub rtt_tolerance_ms: f64,
    /// Significance level of every test, before the Bonferroni correction across services.
    pub alpha: f64,

    /// Wehe (SIGCOMM'19): throughput samples per side, area test thresholds, jackknife.
    pub wehe_min_samples: usize,
    pub wehe_area: f64,
    pub wehe_area_fast: f64,
    pub wehe_fast_bps: f64,
    pub wehe_jackknife_rounds: u32,
    pub wehe_jackknife_fraction: f64,
    pub wehe_jackknife_agreement: f64,

    /// Flach et al. (SIGCOMM'16): losses per flow, spread over this many RTTs; share of the
    /// delivered series within a burst of the token line; RTT growth allowed before the first
    /// loss; rates within this fraction of each other form a cluster.
    pub policing_min_losses: u32,
    pub policing_min_rtts: f64,
    pub policing_consistency: f64,
    pub policing_rtt_inflation: f64,
    pub policing_cluster_tolerance: f64,
    /// Control traffic must have run this many times faster than the policed rate.
    pub control_margin: f64,

    /// Shaping: a plateau (coefficient of variation of the busy bins at most this) with the
    /// round trip grown by at least `shaping_rtt_growth_ms` and a factor `shaping_rtt_factor`.
    pub shaping_max_cv: f64,
    pub shaping_rtt_growth_ms: u64,
    pub shaping_rtt_factor: f64,

    /// Stall/freeze: server data stops after this many bytes (IP bytes towards the client;
    /// the 12–36 KB of the TSPU behaviour, with a margin for header counting), then silence
    /// for at least `stall_silence_s` with no FIN or RST from the server.
    pub stall_min_bytes: u64,
    pub stall_max_bytes: u64,
    pub stall_silence_s: f64,

    /// Calls: RTP loss counted as degradation from this ratio, one-way silence from this
    /// many seconds, a rate step when the mean after a change point falls below this share of
    /// the mean before it.
    pub call_loss: f64,
    /// Interarrival jitter (RFC 3550) counted as degradation from this many milliseconds (a
    /// typical jitter buffer) when also three times the control calls' worst.
    pub call_jitter_ms: f64,
    pub call_silence_s: f64,
    pub call_step_ratio: f64,
    /// Random-loss throttling: the share of its packets a connection must lose (or retransmit)
    /// to count as lossy.
    pub loss_min_share: f64,
    /// Smallest number of flows with a finding (resets, stalls, blocked) for a verdict.
    pub min_affected_flows: u64,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            window_s: 60,
            bulk_min_bytes: 100_000,
            rtt_ratio: 3.0,
            rtt_tolerance_ms: 20.0,
            alpha: 0.01,
            wehe_min_samples: 10,
            wehe_area: 0.5,
            wehe_area_fast: 0.3,
            wehe_fast_bps: 10e6,
            wehe_jackknife_rounds: 100,
            wehe_jackknife_fraction: 0.5,
            wehe_jackknife_agreement: 0.95,
            policing_min_losses: 15,
            policing_min_rtts: 3.0,
            policing_consistency: 0.9,
            policing_rtt_inflation: 1.5,
            policing_cluster_tolerance: 0.2,
            control_margin: 1.5,
            shaping_max_cv: 0.3,
            shaping_rtt_growth_ms: 100,
            shaping_rtt_factor: 2.0,
            stall_min_bytes: 10_000,
            stall_max_bytes: 70_000,
            stall_silence_s: 3.0,
            call_loss: 0.03,
            call_jitter_ms: 30.0,
            call_silence_s: 2.0,
            call_step_ratio: 0.6,
            loss_min_share: 0.02,
            min_affected_flows: 2,
        }
    }
}

impl DetectConfig {
    /// Check ranges; the error names the key and the allowed values.
    pub fn validate(&self) -> Result<(), String> {
        let unit = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) && v > 0.0 {
                Ok(())
            } else {
                Err(format!("{name} = {v}: allowed values are in (0, 1]"))
            }
        };
        if !(1..=86_400).contains(&self.window_s) {
            return Err(format!("window_s = {}: allowed values are 1..=86400", self.window_s));
        }
        unit("alpha", self.alpha)?;
        unit("wehe_jackknife_fraction", self.wehe_jackknife_fraction)?;
        unit("wehe_jackknife_agreement", self.wehe_jackknife_agreement)?;
        unit("policing_consistency", self.policing_consistency)?;
        unit("call_loss", self.call_loss)?;
        unit("loss_min_share", self.loss_min_share)?;
        unit("call_step_ratio", self.call_step_ratio)?;
        for (name, v) in [
            ("rtt_ratio", self.rtt_ratio),
            ("control_margin", self.control_margin),
            ("policing_rtt_inflation", self.policing_rtt_inflation),
            ("shaping_rtt_factor", self.shaping_rtt_factor),
        ] {
            if !(v >= 1.0 && v.is_finite()) {
                return Err(format!("{name} = {v}: allowed values are >= 1"));
            }
        }
        if !(self.rtt_tolerance_ms >= 0.0 && self.rtt_tolerance_ms.is_finite()) {
            return Err(format!(
                "rtt_tolerance_ms = {}: allowed values are >= 0",
                self.rtt_tolerance_ms
            ));
        }
        if self.stall_min_bytes >= self.stall_max_bytes {
            return Err(format!(
                "stall_min_bytes = {} must be below stall_max_bytes = {}",
                self.stall_min_bytes, self.stall_max_bytes
            ));
        }
        if self.wehe_min_samples < 2 || self.policing_min_losses < 2 {
            return Err("wehe_min_samples and policing_min_losses: allowed values are >= 2".into());
        }
        Ok(())
    }
}

/// The daemon's settings (`[daemon]` of the configuration file, or the UCI file on OpenWrt).
/// Every key is documented in `samples/throttlewatch.toml`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonConfig {
    pub interfaces: Vec<String>,
    pub snaplen: u32,
    /// Snap length of the second, narrowly filtered capture whose full copies of DNS
    /// answers, STUN messages and TLS ClientHellos go to the classifier; 0 turns it off.
    pub classify_snaplen: u32,
    pub buffer_kib: u32,
    pub control_sample: u32,
    pub events: String,
    /// The events file is renamed to `events.1` before it would grow past this (KiB); 0 never.
    pub events_max_kib: u64,
    pub status: String,
    pub metrics_file: String,
    pub listen: String,
    pub allow_remote_metrics: bool,
    pub user: String,
    pub services: String,
    pub history: String,
    pub max_flows: usize,
    pub detail_flows: usize,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            interfaces: Vec::new(),
            snaplen: 256,
            classify_snaplen: 2048,
            buffer_kib: 4096,
            control_sample: 4,
            events: "-".into(),
            events_max_kib: 8192,
            status: String::new(),
            metrics_file: String::new(),
            listen: String::new(),
            allow_remote_metrics: false,
            user: String::new(),
            services: String::new(),
            history: String::new(),
            max_flows: DEFAULT_MAX_FLOWS,
            detail_flows: DEFAULT_DETAIL_FLOWS,
        }
    }
}

impl DaemonConfig {
    /// Check ranges; the error names the key and the allowed values.
    pub fn validate(&self) -> Result<(), String> {
        if self.interfaces.is_empty() {
            return Err("interfaces: at least one interface is needed (e.g. [\"br-lan\"])".into());
        }
        if let Some(bad) = self.interfaces.iter().find(|i| i.is_empty() || i.len() > 15) {
            return Err(format!("interfaces: {bad:?} is not an interface name (1-15 characters)"));
        }
        if !(64..=65_535).contains(&self.snaplen) {
            return Err(format!("snaplen = {}: allowed values are 64..=65535", self.snaplen));
        }
        if self.classify_snaplen != 0
            && !(self.snaplen < self.classify_snaplen && self.classify_snaplen <= 65_535)
        {
            return Err(format!(
                "classify_snaplen = {}: allowed values are 0 (off) or above snaplen ({}) up to \
                 65535",
                self.classify_snaplen, self.snaplen
            ));
        }
        if !(256..=262_144).contains(&self.buffer_kib) {
            return Err(format!(
                "buffer_kib = {}: allowed values are 256..=262144",
                self.buffer_kib
            ));
        }
        if !(self.control_sample.is_power_of_two() && self.control_sample <= 64) {
            return Err(format!(
                "control_sample = {}: allowed values are 1, 2, 4, 8, 16, 32, 64",
                self.control_sample
            ));
        }
        if !self.listen.is_empty() {
            let addr: std::net::SocketAddr = self.listen.parse().map_err(|_| {
                format!("listen = {:?}: expected IP:PORT, e.g. 127.0.0.1:9737", self.listen)
            })?;
            if !addr.ip().is_loopback() && !self.allow_remote_metrics {
                return Err(format!(
                    "listen = {:?}: not a loopback address; set allow_remote_metrics = true to \
                     serve metrics beyond this machine",
                    self.listen
                ));
            }
        }
        if self.events_max_kib != 0 && !(16..=4_194_304).contains(&self.events_max_kib) {
            return Err(format!(
                "events_max_kib = {}: allowed values are 0 (no cap) or 16..=4194304",
                self.events_max_kib
            ));
        }
        if !(1..=MAX_MAX_FLOWS).contains(&self.max_flows) {
            return Err(format!(
                "max_flows = {}: allowed values are 1..={MAX_MAX_FLOWS}",
                self.max_flows
            ));
        }
        if self.detail_flows > MAX_MAX_FLOWS {
            return Err(format!(
                "detail_flows = {}: allowed values are 0..={MAX_MAX_FLOWS}",
                self.detail_flows
            ));
        }
        Ok(())
    }
}

/// A configuration file: `[detect]` thresholds and `[daemon]` settings.
#[derive(Debug, Default, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigFile {
    pub detect: DetectConfig,
    pub daemon: DaemonConfig,
}

/// Read a TOML configuration file. `[daemon]` is checked by the daemon (it is not needed by
/// `analyze`); `[detect]` is checked here. The error names the file and the key.
pub fn load_config(path: &std::path::Path) -> Result<ConfigFile, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read the configuration: {e}", path.display()))?;
    let file: ConfigFile = toml::from_str(&text)
        .map_err(|e| format!("{}: {}", path.display(), e.to_string().trim()))?;
    file.detect.validate().map_err(|e| format!("{}: [detect] {e}", path.display()))?;
    Ok(file)
}
