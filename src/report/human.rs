//! The human-readable report: the answer first (each verdict in plain words, how sure, what
//! to do next), then what was read, a table per service and the messenger flows, each table
//! with a legend for its columns. Lines fit [`WIDTH`] columns (IPv6 addresses aside) unless
//! `--all`, which lists every flow with every column. Rendered from the same [`Report`] as the
//! JSON, so the two never disagree.

use std::io::{self, Write};

use super::{FlowReport, GroupSummary, Report, Summary};
use crate::detect::{Finding, Verdict};

/// Flow rows shown without `--all`.
pub const DEFAULT_FLOW_ROWS: usize = 50;
/// The width the report keeps to without `--all`, in columns.
pub const WIDTH: usize = 100;

/// Write the report as text. `all_flows` lists every flow, with every column, instead of the
/// first target flows.
pub fn write(report: &Report, all_flows: bool, out: &mut dyn Write) -> io::Result<()> {
    let s = &report.summary;
    writeln!(out, "{}", title(s))?;
    if let Some(span) = span(s) {
        writeln!(out, "  {span}")?;
    }
    for input in &s.inputs {
        if let Some(e) = &input.error {
            wrapped(out, "  ERROR: ", "    ", e)?;
        }
    }
    writeln!(out)?;
    answer(report, out)?;

    writeln!(out, "WHAT WAS READ")?;
    for line in what_was_read(s) {
        writeln!(out, "  {line}")?;
    }
    writeln!(out)?;

    group_row(&GROUP_COLUMNS, out)?;
    for g in s.services.iter().chain(std::iter::once(&s.control)) {
        group_row(&group_cells(g), out)?;
    }
    if s.services.is_empty() {
        writeln!(out, "(no flow matched a service of the catalogue)")?;
    }
    writeln!(out, "  {}", SERVICE_LEGEND.replace('\n', "\n  "))?;
    writeln!(out)?;

    let shown_count = if all_flows { s.flows.total } else { s.flows.target };
    let limit = if all_flows { shown_count } else { DEFAULT_FLOW_ROWS };
    writeln!(out, "{} ({shown_count})", if all_flows { "FLOWS" } else { "MESSENGER FLOWS" })?;
    let shown = || report.flows.iter().filter(|fl| all_flows || fl.role == "target").take(limit);
    // Address columns as wide as the widest address shown (IPv6 needs up to 47 characters);
    // whether the flows come from more than one client (its address: "a.b.c.d:p", "[v6]:p").
    let host = |f: &FlowReport| f.client.rsplit_once(':').map(|(h, _)| h.to_string());
    let (mut width, mut first_host, mut clients) = (6, None, false);
    for f in shown() {
        width = width.max(f.client.len()).max(f.server.len());
        let h = host(&f);
        clients |= *first_host.get_or_insert_with(|| h.clone()) != h;
    }
    if shown_count > 0 && all_flows {
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
            "TIME",
            "RTT",
            "RESENT",
            "END"
        )?;
    } else if shown_count > 0 {
        writeln!(
            out,
            "{:>5} {:<5} {:<width$} {:<10} {:>9} {:>9} {:>7} {:>8} {:>9}",
            "ID", "PROTO", "SERVER", "SERVICE", "UP", "DOWN", "TIME", "RTT", "RESENT"
        )?;
    }
    for fl in shown() {
        if all_flows {
            wide_row(&fl, width, out)?;
        } else {
            compact_row(&fl, width, clients, out)?;
        }
    }
    if shown_count > limit {
        writeln!(
            out,
            "  … {} more; --all lists every flow, --format json gives all measurements",
            shown_count - limit
        )?;
    }
    if shown_count > 0 {
        writeln!(out, "  {}", FLOW_LEGEND.replace('\n', "\n  "))?;
        if all_flows {
            writeln!(out, "  {}", WIDE_FLOW_LEGEND.replace('\n', "\n  "))?;
        }
    }
    Ok(())
}

/// The verdicts, first and in plain words: what was found, how sure, what to do next.
fn answer(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "ANSWER")?;
    if report.verdicts.is_empty() {
        wrapped(out, "  ", "  ", &nothing_to_judge(report))?;
        writeln!(out)?;
        return Ok(());
    }
    // Windows are named only when the verdicts are about more than one.
    let first = report.verdicts[0].window;
    let windows = report.verdicts.iter().any(|v| v.window != first);
    for v in &report.verdicts {
        writeln!(out, "  {}", head(v))?;
        if windows {
            writeln!(out, "    window {} to {}", v.window.start, v.window.end)?;
        }
        wrapped(out, "    ", "    ", plain(v))?;
        let next = v.next_step.advice();
        if !next.is_empty() {
            wrapped(out, "    next: ", "          ", next)?;
        }
    }
    writeln!(out)
}

/// The legend of the service table.
pub(super) const SERVICE_LEGEND: &str = "UP, DOWN: bytes from and to the clients. RTT OUT p50, \
    RTT IN p50: median round trip\nfrom the capture point to the servers, and to the clients.";
/// The legend of the flow table.
pub(super) const FLOW_LEGEND: &str = "UP, DOWN: bytes from and to the client. TIME: how long \
    the flow lasted. RTT: its\nshortest round trip from the capture point to the server (TCP). \
    RESENT: segments\nsent again by the client / by the server (lost on the way, or never \
    acknowledged).";
/// The legend of the columns only the table of every flow has.
pub(super) const WIDE_FLOW_LEGEND: &str = "BY: how the service was recognised (signature, \
    endpoint, dns, rule, range).\nEND: how the flow ended (fin, rst, idle, evicted, \
    end_of_input).";

/// The report's first line: the tool, the files, the packets and how long they span.
pub(super) fn title(s: &Summary) -> String {
    let files = s.inputs.len();
    format!(
        "{}: {} file{}, {} packets over {:.1} s",
        s.tool,
        files,
        if files == 1 { "" } else { "s" },
        s.packets.read,
        s.duration_s,
    )
}

/// "from A to B": the first and the last packet's time.
pub(super) fn span(s: &Summary) -> Option<String> {
    Some(format!("from {} to {}", s.start.as_ref()?, s.end.as_ref()?))
}

/// What was read, a line each: packets, flows by role, the catalogue, a full flow table.
pub(super) fn what_was_read(s: &Summary) -> Vec<String> {
    let reasons: Vec<String> =
        s.packets.skip_reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
    let f = &s.flows;
    let plural = if s.catalogue.services == 1 { "" } else { "s" };
    let mut lines = vec![
        format!(
            "packets measured {}, skipped {}{}",
            s.packets.measured,
            s.packets.skipped,
            if reasons.is_empty() { String::new() } else { format!(" ({})", reasons.join(", ")) }
        ),
        format!(
            "flows {}: {} messenger, {} control (ordinary traffic to compare with), {} other",
            f.total, f.target, f.control, f.other
        ),
        format!("services: {} ({} service{plural})", s.catalogue.source, s.catalogue.services),
    ];
    if f.evicted + f.refused > 0 {
        lines.push(format!(
            "flow table full (max {}): {} evicted, {} refused",
            f.max_flows, f.evicted, f.refused
        ));
    }
    lines
}

/// The answer when there are no verdicts.
pub(super) fn nothing_to_judge(report: &Report) -> String {
    format!(
        "nothing to judge: no flow of a messenger service in the trace ({} services known; \
         --services names others)",
        report.summary.catalogue.services
    )
}

/// A verdict's first line: "msg: THROTTLED (policing), confidence 0.99 (near certain)".
pub(super) fn head(v: &Verdict) -> String {
    let what = match v.finding {
        Finding::Throttled => "THROTTLED",
        Finding::Reset => "CONNECTIONS RESET",
        Finding::Stalled => "CONNECTIONS STALLED",
        Finding::Blocked => "BLOCKED",
        Finding::CallDegraded => "CALLS DEGRADED",
        Finding::Inconclusive => "CANNOT TELL",
        Finding::None => "no sign of interference",
    };
    let mut head = format!("{}: {what}", v.service);
    if let Some(m) = v.mechanism {
        head.push_str(&format!(" ({m})"));
    }
    // A confidence belongs to a finding: beside "none" or "inconclusive", 0.00 would read as
    // "0 % sure".
    if v.is_finding() {
        head.push_str(&format!(", {}", sureness(v.confidence)));
    }
    head
}

/// What a verdict found, in words: its summary without the service's name.
pub(super) fn plain(v: &Verdict) -> &str {
    let text = v.summary.strip_prefix(v.service.as_str()).and_then(|t| t.strip_prefix(": "));
    let text = text.unwrap_or(&v.summary);
    text.strip_prefix("inconclusive: ").unwrap_or(text)
}

/// "confidence 0.97 (near certain)": the number, and what it means to a person.
fn sureness(confidence: f64) -> String {
    let words = match confidence {
        c if c >= 0.95 => "near certain",
        c if c >= 0.8 => "likely",
        _ => "possible",
    };
    format!("confidence {confidence:.2} ({words})")
}

/// `text` in lines of at most [`WIDTH`] columns, the first after `first`, the rest after
/// `rest` (a word longer than a line stands alone).
fn wrapped(out: &mut dyn Write, first: &str, rest: &str, text: &str) -> io::Result<()> {
    let mut line = String::from(first);
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > WIDTH {
            writeln!(out, "{line}")?;
            line = String::from(rest);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    writeln!(out, "{line}")
}

/// The service table's header and a group's cells.
pub(super) const GROUP_COLUMNS: [&str; 8] =
    ["SERVICE", "FLOWS", "TCP", "UDP", "UP", "DOWN", "RTT OUT p50", "RTT IN p50"];

pub(super) fn group_cells(g: &GroupSummary) -> [String; 8] {
    [
        match &g.id {
            Some(id) => id.clone(),
            None => format!("({})", g.name),
        },
        g.flows.to_string(),
        g.tcp_flows.to_string(),
        g.udp_flows.to_string(),
        bytes(g.bytes_up),
        bytes(g.bytes_down),
        g.rtt_external.as_ref().map_or("-".into(), |q| millis(q.p50_us)),
        g.rtt_internal.as_ref().map_or("-".into(), |q| millis(q.p50_us)),
    ]
}

fn group_row(cells: &[impl std::fmt::Display; 8], out: &mut dyn Write) -> io::Result<()> {
    let [a, b, c, d, e, f, g, h] = cells;
    writeln!(out, "{a:<28} {b:>5} {c:>4} {d:>4} {e:>10} {f:>10} {g:>11} {h:>11}")
}

/// What a flow's row notes: resets, zero windows, handshakes, gaps, RTP, STUN.
pub(super) fn notes(f: &FlowReport) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(t) = &f.tcp {
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
    }
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
    notes
}

/// The RTT and RESENT cells of a flow.
pub(super) fn rtt_and_resent(f: &FlowReport) -> (String, String) {
    match &f.tcp {
        Some(t) => (
            t.rtt_external.min_us.map_or("-".into(), |us| millis(u64::from(us))),
            format!("{}/{}", t.up.retransmissions, t.down.retransmissions),
        ),
        None => ("-".into(), "-".into()),
    }
}

/// A row within [`WIDTH`]: the notes (with the client when several are shown, and an end
/// other than FIN or the end of the input) on a line of their own below it.
fn compact_row(f: &FlowReport, width: usize, clients: bool, out: &mut dyn Write) -> io::Result<()> {
    let (rtt, resent) = rtt_and_resent(f);
    writeln!(
        out,
        "{:>5} {:<5} {:<width$} {:<10} {:>9} {:>9} {:>6.1}s {:>8} {:>9}",
        f.id,
        f.proto,
        f.server,
        f.service.as_deref().unwrap_or("-"),
        bytes(f.bytes_up),
        bytes(f.bytes_down),
        f.duration_s,
        rtt,
        resent,
    )?;
    let mut notes = notes(f);
    if !matches!(f.end_reason, "fin" | "end_of_input") {
        notes.push(format!("ended by {}", f.end_reason));
    }
    if clients {
        notes.insert(0, format!("client {}", f.client));
    }
    if notes.is_empty() {
        return Ok(());
    }
    wrapped(out, "        ", "          ", &notes.join("; "))
}

fn wide_row(f: &FlowReport, width: usize, out: &mut dyn Write) -> io::Result<()> {
    let (rtt, resent) = rtt_and_resent(f);
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
        resent,
        f.end_reason,
        notes(f).join("; ")
    )
}

/// SI units, as network people count bytes.
pub(super) fn bytes(n: u64) -> String {
    match n {
        n if n >= 10_000_000_000 => format!("{:.0} GB", n as f64 / 1e9),
        n if n >= 1_000_000_000 => format!("{:.1} GB", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1} kB", n as f64 / 1e3),
        n => format!("{n} B"),
    }
}

pub(super) fn millis(us: u64) -> String {
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

    #[test]
    fn text_wraps_within_the_width() {
        let mut out = Vec::new();
        let text = "word ".repeat(60);
        wrapped(&mut out, "  first: ", "         ", &text).unwrap();
        let out = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.len() >= 3, "{out}");
        assert!(lines.iter().all(|l| l.chars().count() <= WIDTH), "{out}");
        assert!(lines[0].starts_with("  first: word"));
        assert!(lines[1].starts_with("         word"));
        assert_eq!(out.split_whitespace().filter(|w| *w == "word").count(), 60);
    }

    #[test]
    fn sureness_says_what_a_confidence_means() {
        assert_eq!(sureness(0.99), "confidence 0.99 (near certain)");
        assert_eq!(sureness(0.85), "confidence 0.85 (likely)");
        assert_eq!(sureness(0.6), "confidence 0.60 (possible)");
    }
}
