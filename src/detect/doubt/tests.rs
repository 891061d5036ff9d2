//! Every `inconclusive` reason reached end to end: a synthetic capture ([`super::scenarios`])
//! through the real pipeline, window grid and detectors, the typed [`Doubt`] matched, the
//! verdict `inconclusive` with the doubt's text filed under its key, and no finding. The texts
//! are pinned as the report carried them before the reasons were typed.

use super::scenarios::{self, Run};
use super::{Detector, Doubt, OneWayCalls};
use crate::detect::Finding;
use crate::detect::Outcome;
use crate::detect::stall::{Freezes, Stalls};

/// Each doubt's scenario. A new variant does not compile until it is listed here with the
/// scenario that reaches it; [`every_doubt_is_reached_by_its_scenario`] runs them all.
fn scenario_of(doubt: &Doubt) -> &'static str {
    match doubt {
        Doubt::NothingJudged => "lone_datagram",
        Doubt::PolicedRatesApart { .. } => "policed_rates_apart",
        Doubt::PolicedWithoutControl { .. } => "policed_alone",
        Doubt::PolicedBesideFaster { .. } => "policed_beside_a_faster_stream",
        Doubt::PolicedControlsNoFaster { .. } => "policed_beside_slow_controls",
        Doubt::ShapingTooFewBins { .. } => "short_queued_downloads",
        Doubt::ShapingControlsNoFaster { .. } => "shaped_beside_slow_controls",
        Doubt::LossWithoutControl { .. } => "lossy_downloads_alone",
        Doubt::LossNotSignificant { .. } => "requests_sent_again",
        Doubt::LossWithQueueing { .. } => "lossy_queued_downloads",
        Doubt::TooFewSamples { .. } => "download_alone",
        Doubt::ThroughputNotSignificant { .. } => "slower_without_significance",
        Doubt::ResamplesDisagree { .. } => "slower_in_tiny_resamples",
        Doubt::ResetsWithoutControl { .. } => "resets_alone",
        Doubt::SingleInjectedReset { .. } => "one_injected_reset",
        Doubt::SingleFreeze { .. } => "one_freeze",
        Doubt::StallsBegun { .. } => "stalls_under_way",
        Doubt::StallsWithoutControl { .. } => "stalls_alone",
        Doubt::ControlsStallToo { .. } => "stalls_everywhere",
        Doubt::UnansweredWithoutControl { .. } => "unanswered_stun_alone",
        Doubt::CallsWithoutControl { .. } => "lossy_call_alone",
        Doubt::OneWayCallsWithoutControl(_) => "one_way_call_alone",
        Doubt::OneWayCallsEverywhere(_) => "one_way_calls_everywhere",
    }
}

/// A synthetic capture and its thresholds.
type Scenario = fn() -> Run;

/// The scenarios by name.
const SCENARIOS: [(&str, Scenario); 23] = [
    ("lone_datagram", scenarios::lone_datagram),
    ("policed_rates_apart", scenarios::policed_rates_apart),
    ("policed_alone", scenarios::policed_alone),
    ("policed_beside_a_faster_stream", scenarios::policed_beside_a_faster_stream),
    ("policed_beside_slow_controls", scenarios::policed_beside_slow_controls),
    ("short_queued_downloads", scenarios::short_queued_downloads),
    ("shaped_beside_slow_controls", scenarios::shaped_beside_slow_controls),
    ("lossy_downloads_alone", scenarios::lossy_downloads_alone),
    ("requests_sent_again", scenarios::requests_sent_again),
    ("lossy_queued_downloads", scenarios::lossy_queued_downloads),
    ("download_alone", scenarios::download_alone),
    ("slower_without_significance", scenarios::slower_without_significance),
    ("slower_in_tiny_resamples", scenarios::slower_in_tiny_resamples),
    ("resets_alone", scenarios::resets_alone),
    ("one_injected_reset", scenarios::one_injected_reset),
    ("one_freeze", scenarios::one_freeze),
    ("stalls_under_way", scenarios::stalls_under_way),
    ("stalls_alone", scenarios::stalls_alone),
    ("stalls_everywhere", scenarios::stalls_everywhere),
    ("unanswered_stun_alone", scenarios::unanswered_stun_alone),
    ("lossy_call_alone", scenarios::lossy_call_alone),
    ("one_way_call_alone", scenarios::one_way_call_alone),
    ("one_way_calls_everywhere", scenarios::one_way_calls_everywhere),
];

/// Every doubt of every window of the scenario `name`, after checking that no window claims a
/// finding and that each window with doubts has one verdict, `inconclusive`, carrying each
/// doubt's text under its key.
fn doubts(name: &str) -> Vec<Doubt> {
    let (_, scenario) = SCENARIOS.iter().find(|s| s.0 == name).expect("a listed scenario");
    doubts_of(name, *scenario)
}

/// [`doubts`] of a scenario not in [`SCENARIOS`].
fn doubts_of(name: &str, scenario: Scenario) -> Vec<Doubt> {
    let run = scenario();
    let mut all = Vec::new();
    for window in run.sim.judge(&run.cfg) {
        let summaries: Vec<&str> = window.verdicts.iter().map(|v| v.summary.as_str()).collect();
        assert!(
            !window.outcomes.iter().any(|o| matches!(o, Outcome::Finding(_))),
            "{name}: a detector claims a finding: {summaries:?}"
        );
        if window.doubts.is_empty() {
            continue;
        }
        let [verdict] = &window.verdicts[..] else {
            panic!("{name}: {} verdicts in a window with doubts: {summaries:?}", summaries.len())
        };
        assert_eq!(verdict.finding, Finding::Inconclusive, "{name}: {}", verdict.summary);
        assert!(verdict.mechanism.is_none() && verdict.flows.is_empty(), "{name}");
        for d in &window.doubts {
            assert_eq!(verdict.evidence["reasons"][d.key()], d.to_string(), "{name}");
        }
        all.extend(window.doubts);
    }
    all
}

/// The doubt of the scenario `name` that is its own (per [`scenario_of`]).
fn reach(name: &str) -> Doubt {
    let all = doubts(name);
    all.iter()
        .find(|d| scenario_of(d) == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} reached none of its doubts, only {all:?}"))
}

#[test]
fn every_doubt_is_reached_by_its_scenario() {
    let mut reached: Vec<std::mem::Discriminant<Doubt>> = Vec::new();
    for (name, _) in SCENARIOS {
        let d = reach(name);
        assert!(!reached.contains(&std::mem::discriminant(&d)), "{name}: {d:?} twice");
        reached.push(std::mem::discriminant(&d));
    }
}

#[test]
fn nothing_to_judge() {
    assert_eq!(reach("lone_datagram"), Doubt::NothingJudged);
    assert_eq!(Doubt::NothingJudged.key(), "all");
    assert_eq!(
        Doubt::NothingJudged.to_string(),
        "no flows any detector could judge (no transfers, calls or connections of the kinds \
         they compare)"
    );
}

#[test]
fn policed_rates_too_far_apart() {
    let d = reach("policed_rates_apart");
    assert_eq!(d, Doubt::PolicedRatesApart { policed_flows: 2 });
    assert_eq!(d.detector(), Some(Detector::Policing));
    assert_eq!(
        d.to_string(),
        "2 flow(s) lose packets like a policer, but at rates too far apart to be one policer's"
    );
}

#[test]
fn policed_without_a_control_transfer() {
    let d = reach("policed_alone");
    let Doubt::PolicedWithoutControl { policed_flows: 1, rate_bps } = d else { panic!("{d:?}") };
    assert!((rate_bps / 256_000.0 - 1.0).abs() < 0.05, "{rate_bps}");
    assert_eq!(
        d.to_string(),
        "1 flow(s) lose packets like a policer at ~253 kbit/s, but no control transfer in the \
         window shows the link is faster"
    );
    // The Wehe test has no control either.
    assert!(doubts("policed_alone").iter().any(|d| matches!(d, Doubt::TooFewSamples { .. })));
}

#[test]
fn policed_beside_control_transfers_no_faster() {
    let d = reach("policed_beside_slow_controls");
    let Doubt::PolicedControlsNoFaster { rate_bps, control_bps } = d else { panic!("{d:?}") };
    assert!(control_bps < 1.5 * rate_bps && control_bps > 0.0, "{rate_bps} {control_bps}");
    assert_eq!(
        d.to_string(),
        "policer-like losses at ~253 kbit/s, but control transfers reached only ~240 kbit/s: \
         the link itself may be the limit"
    );
}

#[test]
fn policed_beside_a_faster_connection_of_the_service() {
    let d = reach("policed_beside_a_faster_stream");
    let Doubt::PolicedBesideFaster { rate_bps, faster_flows } = d else { panic!("{d:?}") };
    assert!((200_000.0..300_000.0).contains(&rate_bps), "{rate_bps}");
    assert_eq!(faster_flows, 1);
    assert_eq!(d.detector(), Some(Detector::Policing));
    assert_eq!(
        d.to_string(),
        "one flow loses packets like a policer at ~253 kbit/s, but 1 other connection(s) of the \
         service carried more since its first loss than such a bucket lets through"
    );
}

#[test]
fn shaping_with_too_few_busy_bins() {
    let d = reach("short_queued_downloads");
    assert_eq!(
        d,
        Doubt::ShapingTooFewBins { min_rtt_us: 40_000, max_rtt_us: 300_000, busy_bins: 2 }
    );
    assert_eq!(
        d.to_string(),
        "the round trip grew from 40 to 300 ms during downloads, but they filled only 2 busy \
         bins (need 6) to see a plateau"
    );
}

#[test]
fn shaping_beside_control_transfers_no_faster() {
    let d = reach("shaped_beside_slow_controls");
    let Doubt::ShapingControlsNoFaster { plateau_bps, control_bps } = d else { panic!("{d:?}") };
    assert!((plateau_bps / 1e6 - 1.0).abs() < 0.05, "{plateau_bps}");
    assert!(control_bps < 1.5 * plateau_bps, "{control_bps}");
    assert_eq!(
        d.to_string(),
        "downloads pinned at ~1000 kbit/s with a growing round trip, but control transfers \
         reached only ~1.1 Mbit/s"
    );
}

#[test]
fn loss_without_a_control_connection() {
    let d = reach("lossy_downloads_alone");
    let Doubt::LossWithoutControl { lossy_connections: 4, connections: 4, loss_share } = d else {
        panic!("{d:?}")
    };
    assert!((0.02..0.08).contains(&loss_share), "{loss_share}");
    assert_eq!(
        d.to_string(),
        "4 of 4 connections lose 5.2% of their packets, but no control connection to compare \
         with"
    );
}

#[test]
fn loss_too_few_to_tell() {
    let d = reach("requests_sent_again");
    let Doubt::LossNotSignificant { lost: 5, control_counted, p, alpha, .. } = d else {
        panic!("{d:?}")
    };
    assert!(control_counted > 0 && p >= alpha && p < 0.05, "{d:?}");
    assert_eq!(
        d.to_string(),
        "the service's connections lost or sent again 5 of 320 packets (1.6%), the control \
         connections none of their 405: p=1.65e-2, rare by chance but short of the p<1.0e-2 a \
         finding needs here; too few to tell"
    );
}

#[test]
fn loss_behind_a_queue() {
    let d = reach("lossy_queued_downloads");
    let Doubt::LossWithQueueing {
        loss_share,
        control_loss_share,
        connections: 4,
        least_min_rtt_us,
        typical_min_rtt_us,
        ..
    } = d
    else {
        panic!("{d:?}")
    };
    assert!(loss_share >= 2.0 * control_loss_share, "{loss_share} {control_loss_share}");
    assert_eq!((least_min_rtt_us, typical_min_rtt_us), (40_000.0, 300_000.0));
    assert_eq!(
        d.to_string(),
        "the service's connections lose 5.8% of their packets (control 0.1%), but their round \
         trips grew as behind a queue (3 of 4 connections; the least 40 ms, typically 300 ms): \
         a shaper or congestion drops so too"
    );
}

#[test]
fn too_few_throughput_samples() {
    let d = reach("download_alone");
    assert_eq!(
        d,
        Doubt::TooFewSamples {
            target_samples: 7,
            control_samples: 0,
            min_samples: 10,
            comparable_controls: 0,
            rtt_ratio: 3.0,
        }
    );
    assert_eq!(
        d.to_string(),
        "7 target and 0 comparable control throughput samples (need 10 each; 0 control \
         transfers within 3x of the targets' RTT)"
    );
}

#[test]
fn throughput_apart_without_significance() {
    let d = reach("slower_without_significance");
    let Doubt::ThroughputNotSignificant { area, ks_p } = d else { panic!("{d:?}") };
    assert!(area >= 0.5 && ks_p >= 1e-12, "{area} {ks_p}");
    assert_eq!(d.to_string(), "throughput differs (area 96.13) but not significantly (KS p<1e-6)");
}

#[test]
fn throughput_resamples_disagree() {
    let d = reach("slower_in_tiny_resamples");
    assert_eq!(d, Doubt::ResamplesDisagree { agreement: 0.0 });
    assert_eq!(
        d.to_string(),
        "throughput differs in the full samples, but only 0% of half-size resamples agree"
    );
}

#[test]
fn resets_without_a_control_connection() {
    let d = reach("resets_alone");
    assert_eq!(
        d,
        Doubt::ResetsWithoutControl {
            reset_flows: 3,
            tcp_flows: 3,
            with_signatures: 3,
            control_connections: 0
        }
    );
    assert_eq!(
        d.to_string(),
        "3 of 3 connections reset by the server side (3 with injection signatures), but no \
         control connection to compare with"
    );
}

#[test]
fn a_single_injected_reset() {
    let d = reach("one_injected_reset");
    let Doubt::SingleInjectedReset { connections: 1, ref signatures } = d else { panic!("{d:?}") };
    assert!(signatures.contains(&"faster_than_rtt"), "{signatures:?}");
    assert_eq!(
        d.to_string(),
        format!(
            "1 of 1 connections reset by the server side with injection signatures ({}), and \
             no control connection was reset: too few to tell an injector from a server's \
             trouble",
            signatures.join(", ")
        )
    );
}

#[test]
fn a_single_freeze() {
    let d = reach("one_freeze");
    let Doubt::SingleFreeze { connections: 1, server_bytes } = d else { panic!("{d:?}") };
    assert!((14_000..15_000).contains(&server_bytes), "{server_bytes}");
    assert_eq!(
        d.to_string(),
        "1 of 1 connections froze after 14 kB from the server with no reset, and no control \
         connection did: too few to tell a middlebox from a server's trouble"
    );
}

#[test]
fn stalls_under_way_as_the_window_ends() {
    let d = reach("stalls_under_way");
    assert_eq!(d, Doubt::StallsBegun { stalled_flows: 1, resending_flows: 2, connections: 3 });
    assert_eq!(d.next_step(), super::NextStep::CaptureLonger);
    assert_eq!(
        d.to_string(),
        "1 of 3 connections stalled, and 2 more sent data again, unanswered, as the window \
         ended: too soon to tell a stall from a loss's back-off (no control connection did \
         either)"
    );
}

/// Three connections with the client's data never acknowledged.
const CLIENT_DATA_STUCK: Stalls = Stalls {
    freezes: None,
    client_unacknowledged: 3,
    client_unanswered: 0,
    server_unacknowledged: 0,
    server_undelivered: 0,
};

#[test]
fn stalls_without_a_control_connection() {
    let d = reach("stalls_alone");
    assert_eq!(
        d,
        Doubt::StallsWithoutControl {
            stalled_flows: 3,
            connections: 3,
            stalls: CLIENT_DATA_STUCK,
            control_connections: 0
        }
    );
    assert_eq!(
        d.to_string(),
        "3 of 3 connections stalled (3 with the client's data retransmitted and never \
         acknowledged), but no control connection to compare with"
    );
}

/// One control connection that went through cannot make three stalls of three significant
/// (Fisher's p = 0.25); the answer names it, where it was "no interference" before.
#[test]
fn stalls_beside_too_few_controls() {
    let all = doubts_of("stalls_beside_one_control", scenarios::stalls_beside_one_control);
    let expected = Doubt::StallsWithoutControl {
        stalled_flows: 3,
        connections: 3,
        stalls: CLIENT_DATA_STUCK,
        control_connections: 1,
    };
    assert!(all.contains(&expected), "{all:?}");
    assert_eq!(
        expected.to_string(),
        "3 of 3 connections stalled (3 with the client's data retransmitted and never \
         acknowledged), but only 1 control connection(s) to compare with (all went through), too \
         few to tell"
    );
}

#[test]
fn controls_stall_as_often() {
    let d = reach("stalls_everywhere");
    assert_eq!(
        d,
        Doubt::ControlsStallToo {
            stalled_flows: 3,
            connections: 3,
            stalls: CLIENT_DATA_STUCK,
            control_stalled_flows: 3,
            control_connections: 3,
            fisher_p: 1.0,
        }
    );
    assert_eq!(
        d.to_string(),
        "3 of 3 connections stalled (3 with the client's data retransmitted and never \
         acknowledged), and so did 3 of 3 control connections (p=1.00e0): connections to other \
         destinations fail the same way, as under an allowlist that blocks all foreign \
         destinations or on a broken path; this service is not singled out"
    );
}

#[test]
fn stalls_text_names_freezes_and_both_sides() {
    let stalls = Stalls {
        freezes: Some(Freezes { count: 3, least_bytes: 16_200, most_bytes: 17_900 }),
        client_unacknowledged: 2,
        client_unanswered: 0,
        server_unacknowledged: 1,
        server_undelivered: 0,
    };
    assert_eq!(
        stalls.to_string(),
        "3 froze after 16-17 kB from the server; 2 with the client's data retransmitted and \
         never acknowledged; 1 with the server's data retransmitted and never acknowledged"
    );
}

#[test]
fn unanswered_attempts_without_a_control_attempt() {
    let d = reach("unanswered_stun_alone");
    assert_eq!(
        d,
        Doubt::UnansweredWithoutControl { unanswered: 2, attempts: 2, control_attempts: 0 }
    );
    assert_eq!(
        d.to_string(),
        "2 of 2 connection attempts never answered, but no control attempt of the same kind to \
         compare with"
    );
}

#[test]
fn a_lossy_call_without_a_control_call() {
    let d = reach("lossy_call_alone");
    assert_eq!(d, Doubt::CallsWithoutControl { calls: 1 });
    assert_eq!(
        d.to_string(),
        "1 call(s) lose media or go silent, but no control call to compare with"
    );
}

/// The call of [`scenarios::one_way_call_alone`]: five packets back and the STUN response.
const ONE_WAY: OneWayCalls =
    OneWayCalls { one_way_calls: 1, calls_sending_media: 1, packets_back: 6, packets_sent: 501 };

#[test]
fn a_one_way_call_without_a_control_call() {
    let d = reach("one_way_call_alone");
    assert_eq!(d, Doubt::OneWayCallsWithoutControl(ONE_WAY));
    assert_eq!(
        d.to_string(),
        "1 of 1 call(s) got next to no media towards the client (6 packets back for 501 sent), \
         but no control call to compare with"
    );
}

#[test]
fn one_way_calls_everywhere() {
    let d = reach("one_way_calls_everywhere");
    assert_eq!(d, Doubt::OneWayCallsEverywhere(ONE_WAY));
    assert_eq!(
        d.to_string(),
        "1 of 1 call(s) got next to no media towards the client (6 packets back for 501 sent), \
         and so did every control call: the link may drop all calls"
    );
}
