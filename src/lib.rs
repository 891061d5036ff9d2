//! throttlewatch: detect throttling of messenger services from the packets that cross a router.
//!
//! The pipeline (DESIGN §1), one module per stage, dependencies running one way:
//! `capture` (packet sources) → [`decode`] → [`flow`] (table and keys) → [`measure`]
//! (per-flow measurements) → [`classify`] (service catalogue) → [`detect`] (verdicts) →
//! [`report`] (outputs). [`pipeline`] wires the stages; `analyze` drives it from files and
//! `daemon` from live interfaces.

#[cfg(feature = "pcap")]
pub mod analyze;
#[cfg(feature = "pcap")]
pub mod capture;
pub mod classify;
pub mod config;
#[cfg(feature = "pcap")]
pub mod daemon;
pub mod decode;
pub mod detect;
pub mod flow;
pub mod measure;
pub mod pipeline;
pub mod report;
pub mod time;
