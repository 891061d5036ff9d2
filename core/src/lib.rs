//! throttlewatch-core: the per-packet half of throttlewatch (ARCHITECTURE.md), in its own crate so
//! that it is compiled for speed while the rest of the binary (command line, detectors,
//! daemon, configuration) is compiled for size.
//!
//! [`decode`] → [`flow`] (table and keys) → [`measure`] (per-flow measurements) →
//! [`classify`] (service catalogue); [`pipeline`] wires them and hands finished flows on.
//! Nothing here reads the clock or does I/O beyond loading a catalogue file.

pub mod classify;
pub mod config;
pub mod decode;
pub mod flow;
pub mod measure;
pub mod pipeline;
pub mod time;
