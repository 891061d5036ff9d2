//! The human-readable report: what was read, a table per service, the messenger flows, and
//! the verdicts. Rendered from the same [`Report`] as the JSON, so the two never disagree.

use std::io::{self, Write};

use super::{FlowReport, GroupSummary, Report};

/// Flow rows shown without `--all`.
pub const DEFAULT_FLOW_ROWS: usize = 50;

/// Write the report as text. `all_flows` lists every flow instead of the first target flows.
pub fn write(report: &Report, all_flows: bool, out: &mut dyn Write) -> io::Result<()> {
    let s = &report.summary;
    let files = s.inputs.len();
    writeln!(
        out,
        "{}: {} file{}, {} packets over {:.1} s{}",
        s.tool,
        files,
        if files == 1 { "" } else { "s" },
        s.packets.read,
        s.duration_s,
        match (&s.start, &s.end) {
            (Some(a), Some(b)) => format!(" ({a} to {b})"),
            _ => String::new(),
        }
    )?;
    for input in &s.inputs {
        if let Some(e) = &input.error {
            writeln!(out, "  ERROR: {e}")?;
        }
    }
    let reasons: Vec<String> =
        s.packets.skip_reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
    writeln!(
        out,
        "  measured {}, skipped {}{}",
        s.packets.measured,
        s.packets.skipped,
        if reasons.is_empty() { String::new() } else { format!(" ({})", reasons.join(", ")) }
    )?;
    let f = &s.flows;
    writeln!(
        out,
        "  flows {}: {} messenger, {} control, {} other; catalogue: {} ({} service{})",
        f.total,
        f.target,
        f.control,
        f.other,
        s.catalogue.source,
        s.catalogue.services,
        if s.catalogue.services == 1 { "" } else { "s" }
    )?;
    if f.evicted + f.refused > 0 {
        writeln!(
            out,
            "  flow table full (max {}): {} evicted, {} refused",
            f.max_flows, f.evicted, f.refused
        )?;
    }
    writeln!(out)?;

    writeln!(
        out,
        "{:<28} {:>5} {:>4} {:>4} {:>10} {:>10} {:>11} {:>11}",
        "SERVICE", "FLOWS", "TCP", "UDP", "UP", "DOWN", "RTT EXT p50", "RTT INT p50"
    )?;
    for g in s.services.iter().chain(std::iter::once(&s.control)) {
        group_row(g, out)?;
    }
    if s.services.is_empty() {
        writeln!(out, "(no flow matched a service of the catalogue)")?;
    }
    writeln!(out)?;

    let shown_count = if all_flows { s.flows.total } else { s.flows.target };
    let limit = if all_flows { shown_count } else { DEFAULT_FLOW_ROWS };
    writeln!(out, "{} ({shown_count})", if all_flows { "FLOWS" } else { "MESSENGER FLOWS" })?;
    let shown = || report.flows.iter().filter(|fl| all_flows || fl.role == "target").take(limit);
    // Address columns as wide as the widest address shown (IPv6 needs up to 47 characters).
    let width = shown().map(|f| f.client.len().max(f.server.len())).max().unwrap_or(0).max(6);
    if shown_count > 0 {
        writeln!(
            out,
            "{:>5} {:<5} {:<width$} {:<width$} {:<12} {:<9} {:>9} {:>9} {:>7} {:>9} {:>7} {:<12} NOTES",
            "ID",
            "PROTO",
            "CLIENT",
            "SERVER",
            "SERVICE",
            "BY",
            "UP",
            "DOWN",
            "DUR",
            "RTT EXT",
            "RETX",
            "END"
        )?;
    }
    for fl in shown() {
        flow_row(&fl, width, out)?;
    }
    if shown_count > limit {
        writeln!(
            out,
            "  … {} more; --all lists every flow, --format json gives all measurements",
            shown_count - limit
        )?;
    }
    writeln!(out)?;

    writeln!(out, "VERDICTS")?;
    if report.verdicts.is_empty() {
        writeln!(out, "  (none: no messenger flows to judge; detectors: {})", s.detectors)?;
    }
    for v in &report.verdicts {
        // A confidence belongs to a finding: beside "none" or "inconclusive", 0.00 would read
        // as "0 % sure".
        let sure =
            if v.is_finding() { format!("confidence {:.2}", v.confidence) } else { String::new() };
        writeln!(
            out,
            "  {:<12} {:<14} {:<14} {sure:<15}  {} to {}",
            v.service,
            v.finding,
            v.mechanism.map_or("-", |m| m.as_str()),
            v.window.start,
            v.window.end
        )?;
        writeln!(out, "    {}", v.summary)?;
    }
    Ok(())
}

fn group_row(g: &GroupSummary, out: &mut dyn Write) -> io::Result<()> {
    let label = match &g.id {
        Some(id) => id.clone(),
        None => format!("({})", g.name),
    };
    writeln!(
        out,
        "{:<28} {:>5} {:>4} {:>4} {:>10} {:>10} {:>11} {:>11}",
        label,
        g.flows,
        g.tcp_flows,
        g.udp_flows,
        bytes(g.bytes_up),
        bytes(g.bytes_down),
        g.rtt_external.as_ref().map_or("-".into(), |q| millis(q.p50_us)),
        g.rtt_internal.as_ref().map_or("-".into(), |q| millis(q.p50_us)),
    )
}

fn flow_row(f: &FlowReport, width: usize, out: &mut dyn Write) -> io::Result<()> {
    let mut notes = Vec::new();
    let (rtt, retx) = match &f.tcp {
        Some(t) => {
            if t.up.rsts + t.down.rsts > 0 {
                let side = if t.down.rsts > 0 { "server" } else { "client" };
                notes.push(format!("RST from {side}"));
            }
            if t.up.zero_windows + t.down.zero_windows > 0 {
                notes.push(format!("zero window x{}", t.up.zero_windows + t.down.zero_windows));
            }
            if t.handshake.syns > 0 && !t.handshake.completed {
                notes.push(format!(
                    "handshake incomplete ({} SYN, {} SYN/ACK)",
                    t.handshake.syns, t.handshake.synacks
                ));
            }
            let gaps = t.up.seq_gaps + t.down.seq_gaps;
            if gaps > 0 {
                notes.push(format!("{gaps} seq gaps"));
            }
            let rtt = t.rtt_external.min_us.map_or("-".into(), |us| millis(u64::from(us)));
            (rtt, format!("{}/{}", t.up.retransmissions, t.down.retransmissions))
        }
        None => ("-".into(), "-".into()),
    };
    if let Some(u) = &f.udp {
        for (name, d) in [("up", &u.up), ("down", &u.down)] {
            if let Some(rtp) = &d.rtp {
                let jitter =
                    rtp.jitter_us.map_or(String::new(), |j| format!(" jitter {}", millis(j)));
                notes.push(format!("rtp {name} loss {:.1}%{jitter}", rtp.loss_ratio * 100.0));
            }
        }
        if let Some(stun) = &u.stun {
            notes.push(format!("stun {}/{} answered", stun.answered, stun.requests));
        }
    }
    writeln!(
        out,
        "{:>5} {:<5} {:<width$} {:<width$} {:<12} {:<9} {:>9} {:>9} {:>6.1}s {:>9} {:>7} {:<12} {}",
        f.id,
        f.proto,
        f.client,
        f.server,
        f.service.as_deref().unwrap_or("-"),
        f.service_by,
        bytes(f.bytes_up),
        bytes(f.bytes_down),
        f.duration_s,
        rtt,
        retx,
        f.end_reason,
        notes.join("; ")
    )
}

/// SI units, as network people count bytes.
fn bytes(n: u64) -> String {
    match n {
        n if n >= 10_000_000_000 => format!("{:.0} GB", n as f64 / 1e9),
        n if n >= 1_000_000_000 => format!("{:.1} GB", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1} kB", n as f64 / 1e3),
        n => format!("{n} B"),
    }
}

fn millis(us: u64) -> String {
    if us >= 10_000 {
        format!("{:.0} ms", us as f64 / 1000.0)
    } else {
        format!("{:.1} ms", us as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(43_871), "43.9 kB");
        assert_eq!(bytes(2_500_000), "2.5 MB");
        assert_eq!(millis(1_234), "1.2 ms");
        assert_eq!(millis(45_600), "46 ms");
    }
}
