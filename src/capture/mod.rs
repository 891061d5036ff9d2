//! Capture: packet sources: trace files (pcap, pcapng; read by the project itself), and live
//! interfaces through libpcap (the `pcap` feature) with a kernel filter built from the
//! catalogue: a classic BPF program the project generates itself (`bpf.rs`) and attaches to
//! the capture's socket.
//!
//! Sources hand each frame to a callback with its capture time and wire length; they never
//! interpret packet contents.

#[cfg(feature = "pcap")]
mod bpf;
mod file;
#[cfg(feature = "pcap")]
pub mod filter;
#[cfg(feature = "pcap")]
mod live;

pub use file::{CaptureError, MAX_CAPTURED_BYTES, TraceFile, TraceFormat, open_file};
#[cfg(feature = "jobs")]
pub use file::{SharedBytes, SharedParts};
#[cfg(feature = "pcap")]
pub use live::{LiveCapture, LiveInterface, LiveStats, Polled, Stream, kernel_clock};
