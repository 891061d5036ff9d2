//! Stall / freeze (the TSPU behaviour since 2025): the server's data stops after 12–36 kB on
//! the wire, in the middle of a transfer (its last segment full-sized), no FIN or RST follows
//! from the server, and the connection stays silent from that side until the client gives up
//! or the capture ends. The share of such flows is compared with the control share (one-sided
//! Fisher's exact test) and the stalled flows are counted per destination network. A middlebox
//! freezes every connection at the same byte count: when at least three flows stall within
//! [`CLUSTER_BYTES`] of each other and no control flow stalls, that alone is evidence even where
//! too few flows make the share significant.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::json;

use super::facts::Facts;
use super::{Counts, Finding, Group, Outcome, examples, p_text, share_outcome, versus_control};
use crate::pipeline::FlowEnd;

/// Stall byte counts this close together count as one freeze threshold.
pub const CLUSTER_BYTES: u64 = 2_000;

fn stalled(f: &Facts, g: &Group) -> bool {
    let cfg = g.cfg;
    let Some(t) = f.tcp() else { return false };
    let (up, down) = (&t.dirs[0], &t.dirs[1]);
    let down_bytes = f.f.measures.dirs[1].bytes;
    if !(cfg.stall_min_bytes..=cfg.stall_max_bytes).contains(&down_bytes)
        || down.fin.is_some()
        || down.rst.is_some()
        || up.payload_bytes == 0
        || down.payload_bytes == 0
        || down.max_payload_len < 500
        || u32::from(down.last_payload_len) * 10 < u32::from(down.max_payload_len) * 9
    {
        return false;
    }
    // The client gave up (FIN or RST), or the flow went quiet until its end (or, still open,
    // until the window's end).
    let client_close =
        [up.fin.as_ref(), up.rst.as_ref()].into_iter().flatten().map(|e| f.at(e)).min();
    let quiet_until = if f.f.end == FlowEnd::Active { g.end.max(f.f.last_at) } else { f.f.last_at };
    let end = client_close.unwrap_or(quiet_until);
    let last_down = f.f.measures.dirs[1].last_at;
    end.since(last_down) as f64 >= cfg.stall_silence_s * 1e6
}

/// Got data from the server: could have stalled.
fn could_stall(f: &&Facts) -> bool {
    f.tcp().is_some_and(|t| t.dirs[1].payload_bytes > 0 && t.dirs[0].payload_bytes > 0)
}

fn network(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

pub(super) fn detect(g: &Group) -> Outcome {
    const NAME: &str = "stall";
    let cfg = g.cfg;
    let targets: Vec<&Facts> = g.targets.iter().filter(could_stall).collect();
    if targets.is_empty() {
        return Outcome::NotApplicable;
    }
    let controls: Vec<&Facts> = g.controls.iter().filter(could_stall).collect();
    let hit: Vec<&Facts> = targets.iter().copied().filter(|f| stalled(f, g)).collect();
    let c_hits = controls.iter().filter(|f| stalled(f, g)).count() as u64;
    let t = Counts { hits: hit.len() as u64, total: targets.len() as u64 };
    let c = Counts { hits: c_hits, total: controls.len() as u64 };
    let mut networks = BTreeMap::new();
    for f in &hit {
        *networks.entry(network(f.f.server.addr)).or_insert(0u64) += 1;
    }
    let bytes: Vec<u64> = hit.iter().map(|f| f.f.measures.dirs[1].bytes).collect();
    let same_threshold = bytes.len() >= 3
        && bytes.iter().max().unwrap_or(&0) - bytes.iter().min().unwrap_or(&0) <= CLUSTER_BYTES;
    let evidence = |p: Option<f64>| {
        json!({
            "stalled_flows": t.hits,
            "flows_with_server_data": t.total,
            "control_stalled_flows": c.hits,
            "control_flows_with_server_data": c.total,
            "fisher_p": p,
            "server_bytes_before_stall": bytes,
            "by_network": networks,
            "window_bytes": [cfg.stall_min_bytes, cfg.stall_max_bytes],
            "same_threshold": same_threshold,
            "min_silence_s": cfg.stall_silence_s,
        })
    };
    let comparison = versus_control(g, t, c).or_decided_by(same_threshold && c.hits == 0);
    let range = format!(
        "{}-{} kB",
        bytes.iter().min().unwrap_or(&0) / 1000,
        bytes.iter().max().unwrap_or(&0) / 1000
    );
    share_outcome(
        NAME,
        comparison,
        evidence,
        || {
            format!(
                "{} of {} connections froze after {range} from the server, but no control \
                 connection to compare with",
                t.hits, t.total
            )
        },
        |p, evidence| Finding {
            finding: "stalled",
            mechanism: Some("freeze"),
            confidence: (((1.0 - p) * 0.9) * 100.0).round() / 100.0,
            evidence,
            flows: examples(hit.iter().map(|f| f.id()), 20),
            summary: format!(
                "{} of {} connections froze after {range} from the server, no RST ({}); \
                 control {} of {}",
                t.hits,
                t.total,
                p_text(p),
                c.hits,
                c.total
            ),
        },
    )
}
