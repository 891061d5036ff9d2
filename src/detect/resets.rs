//! Resets: the share of the service's TCP flows that the server side reset, against the
//! control share (one-sided Fisher's exact test), with forensics per RST that tell an injected
//! RST from the server's own (Weaver et al., NDSS'09; Clayton et al., PET'06): a TTL unlike the
//! server's earlier packets, an IP ID out of their sequence, an RST sooner after the client's
//! packet than the round trip to the server allows, data from the "reset" side after it, an
//! RST where the ServerHello should be. The injector's hop distance is estimated from its TTL.
//! Strong signatures (TTL, timing, in place of the ServerHello) on at least
//! `min_affected_flows` RSTs and on no control RST decide on their own where too few flows make
//! the share significant.

use serde_json::{Value, json};

use super::facts::{Facts, hops};
use super::{
    Comparison, Counts, Detected, Detector, Doubt, Finding, Group, Mechanism, Outcome, examples,
    p_text, share_outcome, versus_control,
};

/// The injection signatures of a flow's server-side RST.
fn forensics(f: &Facts) -> Option<(Vec<&'static str>, Value)> {
    let rst = f.server_reset()?;
    let t = f.tcp()?;
    let mut signs = Vec::new();
    if rst.has_prev && rst.ttl.abs_diff(rst.prev_ttl) >= 2 {
        signs.push("ttl_mismatch");
    }
    if rst.has_prev && rst.prev_ip_id != 0 {
        let step = rst.ip_id.wrapping_sub(rst.prev_ip_id) & 0xffff;
        if !(1..=1024).contains(&step) {
            signs.push("ip_id_out_of_sequence");
        }
    }
    if let Some(rtt) = f.min_rtt_us()
        && u64::from(rst.since_peer_us) < rtt / 2
    {
        signs.push("faster_than_rtt");
    }
    if t.dirs.down.packets_after_rst > 0 {
        signs.push("data_after_rst");
    }
    if t.dirs.down.payload_bytes == 0 && t.dirs.up.payload_bytes > 0 {
        signs.push("instead_of_server_hello");
    }
    let (initial, injector_hops) = hops(rst.ttl);
    let server_ttl = f.f.measures.dirs.down.ttl_range().map(|(_, hi)| hi);
    let detail = json!({
        "flow": f.id(),
        "signatures": signs,
        "rst_ttl": rst.ttl,
        "server_ttl": server_ttl,
        "injector_hops": injector_hops,
        "injector_initial_ttl": initial,
        "server_hops": server_ttl.map(|t| hops(t).1),
        "ms_after_client_packet": (rst.since_peer_us != u32::MAX)
            .then(|| f64::from(rst.since_peer_us) / 1000.0),
        "server_payload_bytes_before": t.dirs.down.payload_bytes,
    });
    Some((signs, detail))
}

pub(super) fn detect(g: &Group) -> Outcome {
    const NAME: Detector = Detector::Resets;
    let tcp = |f: &&Facts| f.tcp().is_some_and(|t| t.handshake.completed());
    let targets: Vec<&Facts> = g.targets.iter().filter(tcp).collect();
    if targets.is_empty() {
        return Outcome::NotApplicable;
    }
    let controls: Vec<&Facts> = g.controls.iter().filter(tcp).collect();
    let reset: Vec<(&Facts, Vec<&str>, Value)> =
        targets.iter().filter_map(|f| forensics(f).map(|(s, d)| (*f, s, d))).collect();
    let control_resets = controls.iter().filter(|f| f.server_reset().is_some()).count() as u64;
    let t = Counts { hits: reset.len() as u64, total: targets.len() as u64 };
    let c = Counts { hits: control_resets, total: controls.len() as u64 };
    let injected = reset.iter().filter(|(_, s, _)| !s.is_empty()).count();
    let evidence = |p: Option<f64>| {
        json!({
            "reset_flows": t.hits,
            "tcp_flows": t.total,
            "control_reset_flows": c.hits,
            "control_tcp_flows": c.total,
            "fisher_p": p,
            "with_injection_signatures": injected,
            "rsts": reset.iter().take(10).map(|(_, _, d)| d.clone()).collect::<Vec<_>>(),
        })
    };
    // Strong injection signatures are evidence of their own: enough of them, and none on
    // control RSTs, decide even where too few flows make the share significant. (An IP ID out
    // of sequence alone is not strong: a kernel's RST for a socket it no longer has looks so.)
    let strong = |signs: &[&str]| {
        signs
            .iter()
            .any(|s| matches!(*s, "ttl_mismatch" | "faster_than_rtt" | "instead_of_server_hello"))
    };
    let strongly_signed = reset.iter().filter(|(_, s, _)| strong(s)).count() as u64;
    let control_signed =
        controls.iter().filter(|f| forensics(f).is_some_and(|(s, _)| strong(&s))).count();
    let comparison = versus_control(g, t, c)
        .or_decided_by(strongly_signed >= g.cfg.min_affected_flows && control_signed == 0);
    // A single RST so signed, and no control connection reset: too few to decide, too
    // specific to keep quiet about (an injector may reset only the connections that carry
    // what it looks for, as Russia's after N bytes did).
    if matches!(comparison, Comparison::Nothing)
        && strongly_signed == 1
        && c.hits == 0
        && let Some((_, signatures, _)) = reset.iter().find(|(_, s, _)| strong(s))
    {
        return Outcome::Inconclusive(Doubt::SingleInjectedReset {
            connections: t.total,
            signatures: signatures.clone(),
        });
    }
    share_outcome(
        NAME,
        comparison,
        evidence,
        || Doubt::ResetsWithoutControl {
            reset_flows: t.hits,
            tcp_flows: t.total,
            with_signatures: injected,
            control_connections: c.total,
        },
        |p, evidence| {
            let injection = injected * 2 >= reset.len();
            let mut names: Vec<&str> = reset.iter().flat_map(|(_, s, _)| s.clone()).collect();
            names.sort_unstable();
            names.dedup();
            let hops_text = reset
                .iter()
                .find(|(_, s, _)| !s.is_empty())
                .and_then(|(_, _, d)| d["injector_hops"].as_u64())
                .map(|h| format!(", injector ~{h} hop(s) away"))
                .unwrap_or_default();
            let share = injected as f64 / reset.len() as f64;
            Detected {
                finding: Finding::Reset,
                mechanism: injection.then_some(Mechanism::RstInjection),
                confidence: (((1.0 - p) * (0.7 + 0.25 * share)) * 100.0).round() / 100.0,
                evidence,
                flows: examples(reset.iter().map(|(f, _, _)| f.id()), 20),
                summary: format!(
                    "{} of {} connections reset ({}), control {} of {}{}{}",
                    t.hits,
                    t.total,
                    p_text(p),
                    c.hits,
                    c.total,
                    if names.is_empty() {
                        String::new()
                    } else {
                        format!("; injection signs: {}", names.join(", "))
                    },
                    hops_text
                ),
            }
        },
    )
}
