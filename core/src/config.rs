//! The pipeline's settings: defaults and limits in one place. The CLI and the daemon's
//! configuration resolve into a [`PipelineConfig`] once; nothing else holds a default.

use crate::flow::Timeouts;

/// Flows held at once by default (about 600 bytes each, plus detail slots).
pub const DEFAULT_MAX_FLOWS: usize = 65_536;
/// Largest `--max-flows` accepted.
pub const MAX_MAX_FLOWS: usize = 16_777_216;
/// Flows with throughput bins and windowed RTTs at once by default (about 1.2 KB each).
pub const DEFAULT_DETAIL_FLOWS: usize = 4_096;
/// Width of a throughput bin.
pub const DEFAULT_BIN_MS: u64 = 500;
/// Idle timeouts (packet time): open TCP, UDP, and TCP after FIN in both directions or RST.
pub const DEFAULT_TCP_IDLE_S: u64 = 600;
pub const DEFAULT_UDP_IDLE_S: u64 = 120;
pub const DEFAULT_CLOSED_S: u64 = 10;

/// Everything the pipeline needs to know, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineConfig {
    pub max_flows: usize,
    pub detail_flows: usize,
    pub bin_us: u64,
    pub timeouts: Timeouts,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            max_flows: DEFAULT_MAX_FLOWS,
            detail_flows: DEFAULT_DETAIL_FLOWS,
            bin_us: DEFAULT_BIN_MS * 1000,
            timeouts: Timeouts {
                tcp_idle_us: DEFAULT_TCP_IDLE_S * 1_000_000,
                udp_idle_us: DEFAULT_UDP_IDLE_S * 1_000_000,
                closed_us: DEFAULT_CLOSED_S * 1_000_000,
            },
        }
    }
}
