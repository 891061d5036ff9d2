//! Capture: packet sources, through libpcap: trace files, and live interfaces with a kernel
//! filter built from the catalogue.
//!
//! Sources hand each frame to a callback with its capture time and wire length; they never
//! interpret packet contents.

mod file;
pub mod filter;
mod live;

pub use file::{CaptureError, TraceFile, TraceFormat};
pub use live::{LiveCapture, LiveInterface, LiveStats, Polled, Stream};
