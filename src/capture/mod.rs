//! Capture: packet sources: trace files (pcap, pcapng; read by the project itself), and live
//! interfaces through libpcap (the `pcap` feature) with a kernel filter built from the
//! catalogue: a classic BPF program the project generates itself (`bpf.rs`) and attaches to
//! the capture's socket, and a fanout program that spreads an interface's packets over the
//! daemon's capture workers by flow (`fanout.rs`).
//!
//! Sources hand each frame to a callback with its capture time and wire length; they never
//! interpret packet contents.

#[cfg(feature = "pcap")]
mod bpf;
#[cfg(all(feature = "pcap", feature = "jobs"))]
mod fanout;
mod file;
#[cfg(feature = "pcap")]
pub mod filter;
#[cfg(feature = "pcap")]
mod live;

#[cfg(all(feature = "pcap", feature = "jobs"))]
pub use fanout::FanoutGroups;
#[cfg(all(test, feature = "pcap", feature = "jobs"))]
pub use fanout::member_of as fanout_member_of;
pub use file::{CaptureError, MAX_CAPTURED_BYTES, TraceFile, TraceFormat, open_file};
#[cfg(feature = "jobs")]
pub use file::{SharedBytes, SharedParts};
#[cfg(feature = "pcap")]
pub use live::{LiveCapture, LiveInterface, LiveStats, Polled, Stream, kernel_clock};
