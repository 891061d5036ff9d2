//! Why a detector could not decide: the closed set of `inconclusive` reasons, each with the
//! numbers it rests on (units in the field names), and the detectors that give them. A reason
//! is written out only by its `Display`, the one text the report's `evidence.reasons` and the
//! verdict's summary carry (docs/detectors.md lists every reason and what to do about it).

use std::fmt;

use super::loss::Counted;
use super::stall::Stalls;
use super::{NextStep, p_text, rate_text};

#[cfg(test)]
mod scenarios;
#[cfg(test)]
mod tests;

/// The detectors, by the name their evidence is filed under (`evidence.checked`,
/// `evidence.reasons`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detector {
    Policing,
    Shaping,
    RandomLoss,
    ThroughputDifferentiation,
    Resets,
    Stall,
    Blocking,
    Calls,
}

impl Detector {
    pub fn as_str(self) -> &'static str {
        match self {
            Detector::Policing => "policing",
            Detector::Shaping => "shaping",
            Detector::RandomLoss => "random_loss",
            Detector::ThroughputDifferentiation => "throughput_differentiation",
            Detector::Resets => "resets",
            Detector::Stall => "stall",
            Detector::Blocking => "blocking",
            Detector::Calls => "calls",
        }
    }
}

/// Calls whose client sent media that got (next to) nothing back, in one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OneWayCalls {
    pub one_way_calls: usize,
    pub calls_sending_media: usize,
    /// Packets towards the client, summed over the one-way calls.
    pub packets_back: u64,
    /// The client's packets, summed over the one-way calls.
    pub packets_sent: u64,
}

impl fmt::Display for OneWayCalls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} call(s) got next to no media towards the client ({} packets back for {} \
             sent)",
            self.one_way_calls, self.calls_sending_media, self.packets_back, self.packets_sent
        )
    }
}

/// Busy bins the shaping detector needs to see a plateau.
pub(crate) const SHAPING_MIN_BUSY_BINS: usize = 6;

/// Why the data could not carry a decision.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Doubt {
    /// No flow of the service that any detector could judge (filed under `all`).
    NothingJudged,
    /// Policer-like connections whose rates do not cluster.
    PolicedRatesApart { policed_flows: usize },
    /// Policer-like connections and no control transfer in the window.
    PolicedWithoutControl { policed_flows: usize, rate_bps: f64 },
    /// One policer-like connection, and others of the service that carried more since its
    /// first loss than a bucket at its rate lets through.
    PolicedBesideFaster { rate_bps: f64, faster_flows: usize },
    /// Policer-like losses, control transfers no faster.
    PolicedControlsNoFaster { rate_bps: f64, control_bps: f64 },
    /// A grown round trip, too few busy bins to see a plateau.
    ShapingTooFewBins { min_rtt_us: u64, max_rtt_us: u64, busy_bins: usize },
    /// A plateau behind a queue, control transfers no faster.
    ShapingControlsNoFaster { plateau_bps: f64, control_bps: f64 },
    /// Lossy connections and no control connection.
    LossWithoutControl { lossy_connections: usize, connections: usize, loss_share: f64 },
    /// Loss where the controls lost nothing, rare by chance for one test but not significant
    /// at the window's level.
    LossNotSignificant {
        lost: u64,
        counted: u64,
        control_counted: u64,
        what: Counted,
        p: f64,
        alpha: f64,
    },
    /// Loss above the controls', with the round trips of a queue.
    LossWithQueueing {
        loss_share: f64,
        control_loss_share: f64,
        queued_connections: usize,
        connections: usize,
        least_min_rtt_us: f64,
        typical_min_rtt_us: f64,
    },
    /// Too few throughput samples on one side, and the service slower than the round trips
    /// explain.
    TooFewSamples {
        target_samples: usize,
        control_samples: usize,
        min_samples: usize,
        comparable_controls: usize,
        rtt_ratio: f64,
    },
    /// Throughput CDFs apart, but the KS test not significant.
    ThroughputNotSignificant { area: f64, ks_p: f64 },
    /// Significant in the full samples, not in enough resamples.
    ResamplesDisagree { agreement: f64 },
    /// Server-side resets and no control connection, or too few to tell (none reset).
    ResetsWithoutControl {
        reset_flows: u64,
        tcp_flows: u64,
        with_signatures: usize,
        control_connections: u64,
    },
    /// One connection reset with a strong injection signature (a TTL unlike the server's, an
    /// RST sooner than the round trip allows, one in place of the ServerHello), no control
    /// connection reset.
    SingleInjectedReset { connections: u64, signatures: Vec<&'static str> },
    /// One connection froze, none of the controls.
    SingleFreeze { connections: u64, server_bytes: u64 },
    /// Too few connections stalled for a verdict (one at least), but with those sending data
    /// again, unanswered, at the window's end (for less than `stall_silence_s`: undecided
    /// there) as many as a verdict needs, and no control connection stalled or doing so:
    /// stalls under way as the window ended.
    StallsBegun { stalled_flows: u64, resending_flows: u64, connections: u64 },
    /// Stalls and no control connection, or too few to tell (none stalled).
    StallsWithoutControl {
        stalled_flows: u64,
        connections: u64,
        stalls: Stalls,
        control_connections: u64,
    },
    /// The control connections stall as often: the path fails for everything.
    ControlsStallToo {
        stalled_flows: u64,
        connections: u64,
        stalls: Stalls,
        control_stalled_flows: u64,
        control_connections: u64,
        fisher_p: f64,
    },
    /// Unanswered connection attempts and no control attempt of their kind, or too few to
    /// tell (all answered).
    UnansweredWithoutControl { unanswered: u64, attempts: u64, control_attempts: u64 },
    /// Calls that lose media or go silent, and no control call.
    CallsWithoutControl { calls: usize },
    /// One-way calls and no control call.
    OneWayCallsWithoutControl(OneWayCalls),
    /// One-way calls, and every control call one-way too.
    OneWayCallsEverywhere(OneWayCalls),
}

impl Doubt {
    /// The detector that doubts; `None` for [`Doubt::NothingJudged`], which none says.
    pub fn detector(&self) -> Option<Detector> {
        Some(match self {
            Doubt::NothingJudged => return None,
            Doubt::PolicedRatesApart { .. }
            | Doubt::PolicedWithoutControl { .. }
            | Doubt::PolicedBesideFaster { .. }
            | Doubt::PolicedControlsNoFaster { .. } => Detector::Policing,
            Doubt::ShapingTooFewBins { .. } | Doubt::ShapingControlsNoFaster { .. } => {
                Detector::Shaping
            }
            Doubt::LossWithoutControl { .. }
            | Doubt::LossNotSignificant { .. }
            | Doubt::LossWithQueueing { .. } => Detector::RandomLoss,
            Doubt::TooFewSamples { .. }
            | Doubt::ThroughputNotSignificant { .. }
            | Doubt::ResamplesDisagree { .. } => Detector::ThroughputDifferentiation,
            Doubt::ResetsWithoutControl { .. } | Doubt::SingleInjectedReset { .. } => {
                Detector::Resets
            }
            Doubt::SingleFreeze { .. }
            | Doubt::StallsBegun { .. }
            | Doubt::StallsWithoutControl { .. }
            | Doubt::ControlsStallToo { .. } => Detector::Stall,
            Doubt::UnansweredWithoutControl { .. } => Detector::Blocking,
            Doubt::CallsWithoutControl { .. }
            | Doubt::OneWayCallsWithoutControl(_)
            | Doubt::OneWayCallsEverywhere(_) => Detector::Calls,
        })
    }

    /// What would let a new capture decide (docs/detectors.md, per reason).
    pub fn next_step(&self) -> NextStep {
        match self {
            Doubt::NothingJudged => NextStep::UseTheService,
            Doubt::PolicedWithoutControl { .. }
            | Doubt::LossWithoutControl { .. }
            | Doubt::ResetsWithoutControl { .. }
            | Doubt::StallsWithoutControl { .. }
            | Doubt::UnansweredWithoutControl { .. }
            | Doubt::CallsWithoutControl { .. }
            | Doubt::OneWayCallsWithoutControl(_)
            | Doubt::TooFewSamples { .. }
            | Doubt::PolicedControlsNoFaster { .. }
            | Doubt::ShapingControlsNoFaster { .. } => NextStep::AddControl,
            Doubt::ShapingTooFewBins { .. }
            | Doubt::ThroughputNotSignificant { .. }
            | Doubt::ResamplesDisagree { .. }
            | Doubt::LossNotSignificant { .. }
            | Doubt::SingleFreeze { .. }
            | Doubt::SingleInjectedReset { .. }
            | Doubt::StallsBegun { .. }
            | Doubt::PolicedBesideFaster { .. } => NextStep::CaptureLonger,
            Doubt::PolicedRatesApart { .. } | Doubt::LossWithQueueing { .. } => NextStep::IdleLine,
            Doubt::ControlsStallToo { .. } | Doubt::OneWayCallsEverywhere(_) => {
                NextStep::CheckThePath
            }
        }
    }

    /// The key of `evidence.reasons` it is filed under.
    pub fn key(&self) -> &'static str {
        self.detector().map_or("all", Detector::as_str)
    }
}

impl fmt::Display for Doubt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Doubt::NothingJudged => f.write_str(
                "no flows any detector could judge (no transfers, calls or connections of the \
                 kinds they compare)",
            ),
            Doubt::PolicedRatesApart { policed_flows } => write!(
                f,
                "{policed_flows} flow(s) lose packets like a policer, but at rates too far \
                 apart to be one policer's"
            ),
            Doubt::PolicedWithoutControl { policed_flows, rate_bps } => write!(
                f,
                "{policed_flows} flow(s) lose packets like a policer at {}, but no control \
                 transfer in the window shows the link is faster",
                rate_text(*rate_bps)
            ),
            Doubt::PolicedBesideFaster { rate_bps, faster_flows } => write!(
                f,
                "one flow loses packets like a policer at {}, but {faster_flows} other \
                 connection(s) of the service carried more since its first loss than such a \
                 bucket lets through",
                rate_text(*rate_bps)
            ),
            Doubt::PolicedControlsNoFaster { rate_bps, control_bps } => write!(
                f,
                "policer-like losses at {}, but control transfers reached only {}: the link \
                 itself may be the limit",
                rate_text(*rate_bps),
                rate_text(*control_bps)
            ),
            Doubt::ShapingTooFewBins { min_rtt_us, max_rtt_us, busy_bins } => write!(
                f,
                "the round trip grew from {} to {} ms during downloads, but they filled only \
                 {busy_bins} busy bins (need {SHAPING_MIN_BUSY_BINS}) to see a plateau",
                min_rtt_us / 1000,
                max_rtt_us / 1000
            ),
            Doubt::ShapingControlsNoFaster { plateau_bps, control_bps } => write!(
                f,
                "downloads pinned at {} with a growing round trip, but control transfers \
                 reached only {}",
                rate_text(*plateau_bps),
                rate_text(*control_bps)
            ),
            Doubt::LossWithoutControl { lossy_connections, connections, loss_share } => write!(
                f,
                "{lossy_connections} of {connections} connections lose {:.1}% of their \
                 packets, but no control connection to compare with",
                loss_share * 100.0
            ),
            Doubt::LossNotSignificant { lost, counted, control_counted, what, p, alpha } => {
                write!(
                    f,
                    "the service's connections lost or sent again {lost} of {counted} {} \
                     ({:.1}%), the control connections none of their {control_counted}: {}, \
                     rare by chance but short of the p<{alpha:.1e} a finding needs here; too \
                     few to tell",
                    what.unit(),
                    *lost as f64 * 100.0 / (*counted).max(1) as f64,
                    p_text(*p)
                )
            }
            Doubt::LossWithQueueing {
                loss_share,
                control_loss_share,
                queued_connections,
                connections,
                least_min_rtt_us,
                typical_min_rtt_us,
            } => write!(
                f,
                "the service's connections lose {:.1}% of their packets (control {:.1}%), but \
                 their round trips grew as behind a queue ({queued_connections} of \
                 {connections} connections; the least {} ms, typically {} ms): a shaper or \
                 congestion drops so too",
                loss_share * 100.0,
                control_loss_share * 100.0,
                (least_min_rtt_us / 1000.0).round(),
                (typical_min_rtt_us / 1000.0).round()
            ),
            Doubt::TooFewSamples {
                target_samples,
                control_samples,
                min_samples,
                comparable_controls,
                rtt_ratio,
            } => write!(
                f,
                "{target_samples} target and {control_samples} comparable control throughput \
                 samples (need {min_samples} each; {comparable_controls} control transfers \
                 within {rtt_ratio}x of the targets' RTT)"
            ),
            Doubt::ThroughputNotSignificant { area, ks_p } => write!(
                f,
                "throughput differs (area {area:.2}) but not significantly (KS {})",
                p_text(*ks_p)
            ),
            Doubt::ResamplesDisagree { agreement } => write!(
                f,
                "throughput differs in the full samples, but only {:.0}% of half-size \
                 resamples agree",
                agreement * 100.0
            ),
            Doubt::ResetsWithoutControl {
                reset_flows,
                tcp_flows,
                with_signatures,
                control_connections,
            } => write!(
                f,
                "{reset_flows} of {tcp_flows} connections reset by the server side \
                 ({with_signatures} with injection signatures), but {}",
                too_few_controls(*control_connections, Controls::Connections)
            ),
            Doubt::SingleInjectedReset { connections, signatures } => write!(
                f,
                "1 of {connections} connections reset by the server side with injection \
                 signatures ({}), and no control connection was reset: too few to tell an \
                 injector from a server's trouble",
                signatures.join(", ")
            ),
            Doubt::SingleFreeze { connections, server_bytes } => write!(
                f,
                "1 of {connections} connections froze after {} kB from the server with no \
                 reset, and no control connection did: too few to tell a middlebox from a \
                 server's trouble",
                server_bytes / 1000
            ),
            Doubt::StallsBegun { stalled_flows, resending_flows, connections } => write!(
                f,
                "{stalled_flows} of {connections} connections stalled, and {resending_flows} \
                 more sent data again, unanswered, as the window ended: too soon to tell a \
                 stall from a loss's back-off (no control connection did either)"
            ),
            Doubt::StallsWithoutControl {
                stalled_flows,
                connections,
                stalls,
                control_connections,
            } => {
                write!(
                    f,
                    "{stalled_flows} of {connections} connections stalled ({stalls}), but {}",
                    too_few_controls(*control_connections, Controls::Connections)
                )
            }
            Doubt::ControlsStallToo {
                stalled_flows,
                connections,
                stalls,
                control_stalled_flows,
                control_connections,
                fisher_p,
            } => write!(
                f,
                "{stalled_flows} of {connections} connections stalled ({stalls}), and so did \
                 {control_stalled_flows} of {control_connections} control connections ({}): \
                 connections to other destinations fail the same way, as under an allowlist \
                 that blocks all foreign destinations or on a broken path; this service is not \
                 singled out",
                p_text(*fisher_p)
            ),
            Doubt::UnansweredWithoutControl { unanswered, attempts, control_attempts } => write!(
                f,
                "{unanswered} of {attempts} connection attempts never answered, but {}",
                too_few_controls(*control_attempts, Controls::Attempts)
            ),
            Doubt::CallsWithoutControl { calls } => write!(
                f,
                "{calls} call(s) lose media or go silent, but no control call to compare with"
            ),
            Doubt::OneWayCallsWithoutControl(calls) => {
                write!(f, "{calls}, but no control call to compare with")
            }
            Doubt::OneWayCallsEverywhere(calls) => {
                write!(f, "{calls}, and so did every control call: the link may drop all calls")
            }
        }
    }
}

/// "no control connection to compare with", or, with a few and none of them hit: "only 1
/// control connection(s) to compare with (all went through), too few to tell".
fn too_few_controls(controls: u64, kind: Controls) -> String {
    let (what, none_hit) = match kind {
        Controls::Connections => ("connection", "all went through"),
        Controls::Attempts => ("attempt of the same kind", "all answered"),
    };
    if controls == 0 {
        return format!("no control {what} to compare with");
    }
    format!("only {controls} control {what}(s) to compare with ({none_hit}), too few to tell")
}

/// What the controls of [`too_few_controls`] are.
#[derive(Debug, Clone, Copy)]
enum Controls {
    Connections,
    Attempts,
}
