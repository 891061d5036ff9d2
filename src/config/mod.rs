//! Defaults and limits, in one place: the pipeline's ([`PipelineConfig`], from the core
//! crate), the detectors' ([`DetectConfig`]) and the daemon's ([`DaemonConfig`]), read from a
//! TOML file or, on OpenWrt, from a UCI file ([`uci`]), merged once with the command line
//! ([`layers`]). Each table's keys are declared once ([`settings`]): type, default, and whether
//! a reload takes a new value; nothing else holds a default.

pub mod layers;
pub mod settings;
pub mod uci;

pub use layers::{ConfigSource, Overrides, Section, load, load_config};
use settings::settings;
pub use settings::{Reload, Setting, Settings};

pub use throttlewatch_core::config::*;

/// The most capture workers (`capture_workers`): a fanout group's members, and threads.
pub const MAX_CAPTURE_WORKERS: usize = 64;

settings! {
    /// Thresholds of the detectors (docs/detectors.md), with the literature's defaults. Read
    /// from the `[detect]` table of a configuration file (`--config`); every key is optional,
    /// unknown keys are errors.
    pub struct DetectConfig {
        /// Evaluation window on packet time; each window judges the part of every flow that lies
        /// in it.
        window_s: u64 = 60, Restart;
        /// A TCP flow is bulk when one direction carries at least this much payload.
        bulk_min_bytes: u64 = 100_000, Live;
        /// Control flows are comparable when their minimum RTT is within this factor of the
        /// target flows', or within `rtt_tolerance_ms` of it (a far server is not a throttled one;
        /// at sub-millisecond RTTs a ratio alone says nothing).
        rtt_ratio: f64 = 3.0, Live;
        rtt_tolerance_ms: f64 = 20.0, Live;
        /// Significance level of every test in a window of a minute or longer (a shorter one
        /// has its share, `window_s` / 60), before the Bonferroni correction across services.
        alpha: f64 = 0.01, Live;

        /// Wehe (SIGCOMM'19): throughput samples per side, area test thresholds, jackknife.
        wehe_min_samples: usize = 10, Live;
        wehe_area: f64 = 0.5, Live;
        wehe_area_fast: f64 = 0.3, Live;
        wehe_fast_bps: f64 = 10e6, Live;
        wehe_jackknife_rounds: u32 = 100, Live;
        wehe_jackknife_fraction: f64 = 0.5, Live;
        wehe_jackknife_agreement: f64 = 0.95, Live;

        /// Flach et al. (SIGCOMM'16): losses per flow, spread over this many RTTs; share of the
        /// delivered series within a burst of the token line; RTT growth allowed before the first
        /// loss; rates within this fraction of each other form a cluster.
        policing_min_losses: u32 = 15, Live;
        policing_min_rtts: f64 = 3.0, Live;
        policing_consistency: f64 = 0.9, Live;
        policing_rtt_inflation: f64 = 1.5, Live;
        policing_cluster_tolerance: f64 = 0.2, Live;
        /// Control traffic must have run this many times faster than the policed rate.
        control_margin: f64 = 1.5, Live;

        /// Shaping: a plateau (coefficient of variation of the busy bins at most this) with the
        /// round trip grown by at least `shaping_rtt_growth_ms` and a factor `shaping_rtt_factor`.
        /// A queue delays by its own length whatever the path's base round trip, so the factor
        /// is 1 (the growth alone decides): at 2 a path of 240 ms needed a queue of 240 ms,
        /// and a shaper's 200-ms queue there was `random_loss` "with no queue".
        shaping_max_cv: f64 = 0.3, Live;
        shaping_rtt_growth_ms: u64 = 100, Live;
        shaping_rtt_factor: f64 = 1.0, Live;

        /// Stall/freeze: server data stops after this many bytes (of the server's sequence
        /// space; the 12–64 kB of the TSPU behaviour, with a margin: a middlebox that counts
        /// 12 kB of packets, headers and handshake included, lets about 9 kB of payload
        /// through), then silence for at least `stall_silence_s` with no FIN or RST from the
        /// server.
        stall_min_bytes: u64 = 8_000, Live;
        stall_max_bytes: u64 = 70_000, Live;
        stall_silence_s: f64 = 3.0, Live;

        /// Calls: RTP loss counted as degradation from this ratio, one-way silence from this
        /// many seconds, a rate step when the mean after a change point falls below this share of
        /// the mean before it.
        call_loss: f64 = 0.03, Live;
        /// Interarrival jitter (RFC 3550) counted as degradation from this many milliseconds (a
        /// typical jitter buffer) when also three times the control calls' worst.
        call_jitter_ms: f64 = 30.0, Live;
        call_silence_s: f64 = 2.0, Live;
        call_step_ratio: f64 = 0.6, Live;
        /// Random-loss throttling: the share of its packets a connection must lose (or retransmit)
        /// to count as lossy.
        loss_min_share: f64 = 0.01, Live;
        /// Smallest number of flows with a finding (resets, stalls, blocked) for a verdict.
        min_affected_flows: u64 = 2, Live;
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

settings! {
    /// The daemon's settings (`[daemon]` of the configuration file, or the UCI file on
    /// OpenWrt). The defaults suit `throttlewatch run -i IFACE` on a PC: events to standard
    /// output, no files written, no port opened; the packages set their own paths
    /// (packaging/throttlewatch.toml, the UCI reader's router defaults).
    /// `samples/throttlewatch.toml` documents every key with its default.
    pub struct DaemonConfig {
        /// Interfaces to capture on; at least one (here or with `-i`).
        interfaces: Vec<String> = Vec::new(), Restart;
        /// Bytes captured per packet.
        snaplen: u32 = 256, Restart;
        /// Snap length of the second, narrowly filtered capture whose full copies of DNS
        /// answers, STUN messages, TLS ClientHellos and QUIC Initials go to the classifier; 0
        /// turns it off.
        classify_snaplen: u32 = 2048, Restart;
        /// Kernel capture buffer per interface, KiB.
        buffer_kib: u32 = 4096, Restart;
        /// The kernel filter keeps 1 control flow in this many (1: every packet, no filter).
        control_sample: u32 = 1, Restart;
        /// Verdict events: a file appended to, or `-` for standard output.
        events: String = "-".into(), Live;
        /// The events file is renamed to `events.1` before it would grow past this (KiB); 0 never.
        events_max_kib: u64 = 8192, Live;
        /// Status file, replaced after every window; "" none.
        status: String = String::new(), Live;
        /// Prometheus textfile; "" none.
        metrics_file: String = String::new(), Live;
        /// `IP:PORT` serving `/metrics`; "" none.
        listen: String = String::new(), Restart;
        /// Whether `listen` may be an address beyond loopback.
        allow_remote_metrics: bool = false, Restart;
        /// The user to become once the captures are open; "" stays.
        user: String = String::new(), Restart;
        /// Service catalogue file; "" the built-in one.
        services: String = String::new(), Live;
        /// Per-service history of bulk goodput; "" none.
        history: String = String::new(), Live;
        /// Flows held at once.
        max_flows: usize = DEFAULT_MAX_FLOWS, Restart;
        /// Flows that keep throughput bins and windowed RTTs at once.
        detail_flows: usize = DEFAULT_DETAIL_FLOWS, Restart;
        /// Capture threads, each measuring its share of every interface's flows with its own
        /// flow table of `max_flows` (the kernel's fanout spreads them by flow).
        capture_workers: usize = 1, Restart;
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
        let most_workers = if cfg!(feature = "jobs") { MAX_CAPTURE_WORKERS } else { 1 };
        if !(1..=most_workers).contains(&self.capture_workers) {
            return Err(format!(
                "capture_workers = {}: allowed values are 1..={most_workers}{}",
                self.capture_workers,
                if most_workers == 1 { " (built without the feature `jobs`)" } else { "" }
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
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ConfigFile {
    pub detect: DetectConfig,
    pub daemon: DaemonConfig,
}
