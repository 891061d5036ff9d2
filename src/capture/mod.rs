//! Capture: packet sources. Files through libpcap now; live interfaces later.
//!
//! Sources hand each frame to a callback with its capture time and wire length; they never
//! interpret packet contents.

mod file;

pub use file::{CaptureError, TraceFile, TraceFormat};
