//! throttlewatch: detect throttling of messenger services from the packets that cross a router.
//!
//! The pipeline (ARCHITECTURE.md), one module per stage, dependencies running one way (the
//! per-packet stages live in the `throttlewatch-core` crate, `core/`, re-exported here):
//! `capture` (packet sources) → [`decode`] → [`flow`] (table and keys) → [`measure`]
//! (per-flow measurements) → [`classify`] (service catalogue) → [`detect`] (verdicts) →
//! [`report`] (outputs). [`pipeline`] wires the stages; `analyze` drives it from files and
//! `daemon` from live interfaces.

pub mod analyze;
pub mod capture;
pub mod classify;
pub mod config;
#[cfg(feature = "pcap")]
pub mod daemon;
pub mod detect;
pub mod report;

pub use throttlewatch_core::{decode, flow, measure, pipeline, time};
