#!/usr/bin/env python3
"""Accuracy of the detectors (README): lab scenarios many times with randomised parameters,
plus every capture of the nDPI corpus, through `throttlewatch analyze`; prints one table row
per finding: detection rate, false alarms, `inconclusive` share, rate-estimate error.

    benches/accuracy.py record [--runs N] [--first N] [--dir DIR] [--only SCENARIO]... [--set K=V]... [--snaplen N]  # lab runs (root, ~20 s each)
    benches/accuracy.py report [--dir DIR] [--corpus DIR] [--json] [--binary PATH] [--window W] [--ipv6]

`record` keeps every trace with its ground truth in DIR (default target/accuracy); `report`
analyzes what is there with the release binary, so detectors can change without re-recording.
Parameters are drawn per run (seeded by the run number): policing 64 kbit/s–5 Mbit/s, shaping
256 kbit/s–4 Mbit/s, freeze 12–36 KB, RST after 5–100 kB or at the ClientHello, call loss
5–40 %, call policing below the call's rate, one-way cut and delayed throttling at 3–9 s, base
RTTs 20–100 ms. The scenarios of issue 9 (real-world behaviours and confounders) draw their own
parameters in lab.py from the run's seed (ranges: `lab/lab.py list`); here only the base RTTs.
Odd-numbered runs of every scenario leave the veths' offloads on (GRO/GSO super-segments in the
capture); `record --offloads on` or `off` sets them in every run recorded. Rows of runs with offloads on say `+offloads`;
`record --set call_framing=opaque` gives the calls media without RTP headers (a call protocol of
its own), in rows that say `(opaque media)`; `--set tcp_timestamps=0` a client that sends no TCP
timestamps (Windows' default), in rows that say `(no timestamps)`; `--set cc=bbr` (or `reno`)
senders with that TCP congestion control instead of Linux's cubic, in rows that say `(bbr)`;
`--set mtu=1400` links of that MTU (both ends announce its MSS), in rows that say `(MTU 1400)`;
`record --snaplen 65535` whole packets, as tcpdump keeps them by default (128 otherwise, as on
a router), in rows that say `(snap 65535)`; `--set capture=wan` traces taken on the router's
WAN interface (the server's packets before the router's impairments, the client's after), in
rows that say `(WAN capture)`. `report --ipv6` judges each
trace rewritten over IPv6 by lab/ipv6.py (with the catalogue's ranges mapped alike): with
`tcp_timestamps=0`, a client whose resent segments carry nothing to tell them by. `report --window W`
judges W-second windows (on the grid `--window-origin` sets at the run's start) as the daemon
does with `window_s = W` (the live lab tests prove both give the same verdicts): a run counts
as detected when a window finds it, as a false alarm when a window claims what it cannot be.
"""
import argparse
import json
import math
import os
import random
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LAB = os.path.join(ROOT, "lab", "lab.py")
# The snap length of the recordings, a router's (the rows of others say `(snap N)`).
SNAPLEN = 128
IPV6 = os.path.join(ROOT, "lab", "ipv6.py")
BINARY = os.path.join(ROOT, "target", "release", "throttlewatch")
SERVICES = os.path.join(ROOT, "samples", "lab-services.toml")

# The workload of every run: the fixtures' (lab.py FIXTURE_SETTINGS) with calls carrying video.
WORKLOAD = {"download_kb": 400, "upload_kb": 100, "stream_kbit": 800, "video_kbit": 300,
            "fetch_every_s": 1.0}
DURATION_S = 14

# scenario -> (expected finding, its mechanism, findings that are not false alarms there);
# where several findings answer a scenario, the first is expected and the others count too.
EXPECTED = {
    "clean": (None, None, set()),
    "police": ("throttled", "policing", {"throttled", "call_degraded"}),
    "shape": ("throttled", "shaping", {"throttled", "call_degraded"}),
    "rst-handshake": ("reset", "rst_injection", {"reset"}),
    "rst-midflow": ("reset", "rst_injection", {"reset"}),
    "freeze": ("stalled", "freeze", {"stalled"}),
    "blackhole": ("blocked", "drop", {"blocked"}),
    "call-police": ("call_degraded", None, {"call_degraded"}),
    "call-loss": ("call_degraded", None, {"call_degraded"}),
    "oneway-cut": ("call_degraded", None, {"call_degraded"}),
    "delayed-throttle": ("throttled", "policing", {"throttled", "call_degraded"}),
    # Issue 9: behaviours reported 2021-2026.
    "sni-police": ("throttled", "policing", {"throttled"}),
    # A bucket for all that the call nearly fills starves the downloads beside it: their data
    # and every resend dropped, they stall.
    "aggregate-police": ("throttled", "policing", {"throttled", "call_degraded", "stalled"}),
    "random-loss": ("throttled", "random_loss", {"throttled", "call_degraded"}),
    "freeze-some": ("stalled", "freeze", {"stalled"}),
    "handshake-stall": ("stalled", "drop", {"stalled", "blocked"}),
    "serverhello-drop": ("stalled", "drop", {"stalled", "blocked"}),
    "packets-then-drop": ("stalled", "drop", {"stalled", "blocked"}),
    "rst-replace": ("reset", "rst_injection", {"reset"}),
    "quic-block": ("blocked", "drop", {"blocked"}),
    "stun-block": ("blocked", None, {"blocked", "call_degraded"}),
    "media-die": ("call_degraded", None, {"call_degraded", "blocked"}),
    "call-partial-loss": ("call_degraded", None, {"call_degraded"}),
    # Issue 10: the call's media with a peer, after STUN with the relay.
    "p2p-media-die": ("call_degraded", None, {"call_degraded", "blocked"}),
    "p2p-call-loss": ("call_degraded", None, {"call_degraded"}),
    "addr-shaping": ("throttled", "shaping", {"throttled", "call_degraded"}),
    # Every foreign address fails, the controls too: a finding about all of them, or
    # `inconclusive` naming it; never `none`.
    "allowlist": ("blocked", None, {"blocked", "stalled", "inconclusive"}),
    # Confounders: no finding.
    "congestion": (None, None, set()),
    "wifi-loss": (None, None, set()),
    "ctl-distance": (None, None, set()),
    "slow-server": (None, None, set()),
    "cross-traffic": (None, None, set()),
}
ISSUE9 = list(EXPECTED)[list(EXPECTED).index("sni-police"):]


def draw(scenario, rng):
    """Randomised parameters of one run (issue 9's scenarios draw the rest in lab.py)."""
    p = {"rtt_ms": rng.randint(20, 100), "ctl_rtt_ms": rng.randint(20, 100)}
    if scenario == "ctl-distance":  # both RTTs are its parameters
        return {}
    if scenario == "addr-shaping":  # the fast address at 50 ms
        del p["rtt_ms"]
    log_uniform = lambda lo, hi: int(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    if scenario == "police":
        p["rate_kbit"] = log_uniform(64, 5000)
        # Enough demand above the rate for ~8 s.
        p["download_kb"] = max(WORKLOAD["download_kb"], p["rate_kbit"])
    elif scenario == "shape":
        p["rate_kbit"] = log_uniform(256, 4000)
        p["download_kb"] = max(WORKLOAD["download_kb"], p["rate_kbit"])
    elif scenario == "rst-midflow":
        p["after_bytes"] = rng.randint(5_000, 100_000)
    elif scenario == "freeze":
        p["after_bytes"] = rng.randint(12_000, 36_000)
    elif scenario == "blackhole":
        p["proto"] = rng.choice(["both", "tcp", "udp"])
        # Dropped, or refused as rejecting firewalls do (an ICMP error, a TCP RST).
        p["reject"] = rng.choice(["drop", "icmp", "reset"])
    elif scenario == "call-police":
        p["rate_kbit"] = rng.randint(64, 300)  # the call carries ~360 kbit/s
    elif scenario == "call-loss":
        p["loss_pct"] = rng.randint(5, 40)
    elif scenario == "oneway-cut":
        p["after_s"] = rng.randint(3, 9)
    elif scenario == "congestion":
        # Below this lighter workload's demand (lab.py's default range suits its own).
        p["rate_kbit"] = rng.randint(2000, 5000)
    elif scenario == "delayed-throttle":
        p["after_s"] = rng.randint(3, 7)
        p["rate_kbit"] = log_uniform(64, 400)
    return p


def snaplen(pcap):
    """The snap length in a pcap file's header."""
    with open(pcap, "rb") as f:
        header = f.read(20)
    order = "<" if header[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    return struct.unpack(order + "I", header[16:20])[0]


def record(args):
    os.makedirs(args.dir, exist_ok=True)
    unknown = set(args.only) - set(EXPECTED)
    if unknown:
        raise SystemExit("--only: no scenario %s" % ", ".join(sorted(unknown)))
    for run in range(args.first, args.first + args.runs):
        for scenario in EXPECTED:
            if args.only and scenario not in args.only:
                continue
            prefix = os.path.join(args.dir, "%s-%03d" % (scenario, run))
            if os.path.exists(prefix + ".truth.json"):
                continue
            rng = random.Random("%s/%d" % (scenario, run))
            params = dict(WORKLOAD, **draw(scenario, rng))
            params.update(kv.split("=", 1) for kv in args.set)
            offloads = {"on": True, "off": False}.get(args.offloads,
                                                       run % 2 == 1)
            cmd = [sys.executable, LAB, "run", scenario, "--quiet", "--seed", str(run),
                   "--duration", str(DURATION_S), "--snaplen", str(args.snaplen), "--out", prefix,
                   "--offloads", "on" if offloads else "off"]
            for k, v in params.items():
                cmd += ["--set", "%s=%s" % (k, v)]
            p = subprocess.run(cmd, capture_output=True, text=True)
            status = "ok" if p.returncode == 0 else "FAILED: " + p.stderr.strip()
            print("%-17s run %3d%s %s %s" % (scenario, run, " +offloads" if offloads else "",
                                             json.dumps(params, sort_keys=True), status), flush=True)


def analyze(pcap, services=SERVICES, binary=BINARY, window=None):
    """The report of one trace; the lab's catalogue for lab traces, the built-in one else;
    `window`: (seconds, origin) for windows on the daemon's grid."""
    cmd = [binary, "analyze", "--format", "json"] + (["--services", services] if services else [])
    if window:
        cmd += ["--window", str(window[0]), "--window-origin", str(window[1])]
    p = subprocess.run(cmd + [pcap], capture_output=True, text=True)
    if p.returncode not in (0, 3):
        raise SystemExit("analyze %s failed: %s" % (pcap, p.stderr))
    return json.loads(p.stdout)


def ipv6(pcap, out, services):
    """`pcap` rewritten over IPv6 as `out` (once), beside the lab's catalogue rewritten alike as
    `services`."""
    rewrite = lambda *a: subprocess.run([sys.executable, IPV6] + list(a), check=True)
    if not os.path.exists(services):
        rewrite("catalogue", SERVICES, services)
    if not os.path.exists(out):
        rewrite("trace", pcap, out)
    return out


def frozen_connections(truth):
    """Connections the middlebox froze in a run: impaired, and not through whole."""
    return sum(1 for f in truth["flows"] if f.get("impaired") and f.get("outcome") != "ok")


def report(args):
    rows = {}
    def row(name):
        return rows.setdefault(name, {"runs": 0, "detected": 0, "mechanism": 0, "false_alarms": 0,
                                      "inconclusive": 0, "rate_errors": [], "missed": []})
    for name in sorted(os.listdir(args.dir)):
        if not name.endswith(".truth.json"):
            continue
        truth = json.load(open(os.path.join(args.dir, name)))
        pcap = os.path.join(args.dir, name.replace(".truth.json", ".pcap"))
        scenario = truth["scenario"]
        expected, mechanism, allowed = EXPECTED[scenario]
        if scenario == "blackhole" and truth["params"].get("reject", "drop") != "drop":
            mechanism = "reject"
        window = (args.window, int(truth["started"])) if args.window else None
        services = SERVICES
        if args.ipv6:
            services = os.path.join(args.ipv6_dir, "services.toml")
            pcap = ipv6(pcap, os.path.join(args.ipv6_dir, os.path.basename(pcap)), services)
        verdicts = [v for v in analyze(pcap, services=services, binary=args.binary,
                                       window=window)["verdicts"]
                    if v["service"] == "msg"]
        findings = {v["finding"] for v in verdicts if v["finding"] not in ("none", "inconclusive")}
        params = truth["params"]
        label = scenario
        if scenario == "police":
            label = "police <= 2 Mbit/s" if params["rate_kbit"] <= 2000 else "police > 2 Mbit/s"
        elif scenario == "call-loss":
            label = "call-loss >= 10 %" if params["loss_pct"] >= 10 else "call-loss < 10 %"
        elif scenario == "blackhole":
            label = "blackhole (%s)" % params["proto"]
            if params.get("reject", "drop") != "drop":
                label = "blackhole (%s, %s)" % (params["proto"], params["reject"])
        elif scenario == "freeze-some" and not frozen_connections(truth):
            # The middlebox chose no connection that reached its threshold (run 5000: 45.7 kB,
            # and only fetches of at most 39 kB chosen): nothing was impaired, and any finding
            # is a false alarm.
            label = "freeze-some (none frozen)"
            expected, mechanism, allowed = None, None, set()
        elif scenario == "freeze-some" and frozen_connections(truth) < 2:
            # One frozen connection cannot tell a middlebox from a server's trouble: the
            # answer is `inconclusive`, naming the freeze (as tests/lab.rs checks).
            label = "freeze-some (one frozen)"
        elif scenario == "random-loss" and params.get("direction") == "up":
            # Past the capture point: what shows is the client's data sent again.
            label = "random-loss (up)"
        elif scenario in ("call-partial-loss", "p2p-call-loss"):
            # Loss on the way up happens past the capture point (the router's LAN side) and
            # is not seen there: its own row.
            label = "%s (%s)" % (scenario, params.get("direction", "down"))
        if params.get("call_framing") == "opaque":
            label += " (opaque media)"
        if params.get("tcp_timestamps") == 0:
            label += " (no timestamps)"
        if params.get("cc", "cubic") != "cubic":
            label += " (%s)" % params["cc"]
        if params.get("mtu", 1500) != 1500:
            label += " (MTU %d)" % params["mtu"]
        if params.get("capture", "lan") != "lan":
            label += " (%s capture)" % params["capture"].upper()
        snap = snaplen(pcap)
        if snap != SNAPLEN:
            label += " (snap %d)" % snap
        if truth.get("offloads"):
            label += " +offloads"
        r = row(label)
        r["runs"] += 1
        # Where several findings answer the scenario, any of them is a detection.
        answers = {expected} | (allowed if scenario in ISSUE9 and expected else set())
        found = [v for v in verdicts if v["finding"] in answers]
        if label.startswith("freeze-some (one frozen)"):
            found = found or [v for v in verdicts
                              if v["finding"] == "inconclusive" and "froze" in v["summary"]]
        if found:
            r["detected"] += 1
            # Resets: the mechanism is named only with at least one injection signature.
            # (A single freeze's `inconclusive` names the freeze.)
            if (mechanism is None or any(v.get("mechanism") == mechanism for v in found)
                    or found[0]["finding"] == "inconclusive"):
                r["mechanism"] += 1
        elif expected:
            r["missed"].append(name.replace(".truth.json", ""))
        if findings - allowed:
            r["false_alarms"] += 1
        if any(v["finding"] == "inconclusive" for v in verdicts):
            r["inconclusive"] += 1
        for v in found:
            if "rate_bps" not in v.get("evidence", {}):
                continue
            if v.get("mechanism") == "policing" and "rate_kbit" in params:
                configured = params["rate_kbit"] * 1000
                # One bucket for all: its rate is the sum of the service's flows.
                measured = v["evidence"].get("aggregate_rate_bps", v["evidence"]["rate_bps"])
                r["rate_errors"].append(abs(measured - configured) / configured)
    corpus = args.corpus
    if os.path.isdir(corpus):
        r = row("nDPI corpus (false alarms)")
        for name in sorted(os.listdir(corpus)):
            if not (name.endswith(".pcap") or name.endswith(".pcapng")):
                continue
            verdicts = analyze(os.path.join(corpus, name), services=None, binary=args.binary)["verdicts"]
            r["runs"] += 1
            if any(v["finding"] not in ("none", "inconclusive") for v in verdicts):
                r["false_alarms"] += 1
            if any(v["finding"] == "inconclusive" for v in verdicts):
                r["inconclusive"] += 1
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        return
    print("| scenario | runs | detected | with the mechanism | false alarms | inconclusive | "
          "policing rate error (median / max) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in sorted(rows, key=lambda n: (n.startswith("nDPI"), n)):
        r = rows[name]
        n = max(r["runs"], 1)
        errors = sorted(r["rate_errors"])
        err = ("%.1f %% / %.1f %%" % (100 * errors[len(errors) // 2], 100 * errors[-1])) if errors else "-"
        judged = not (name.startswith("nDPI") or "(none frozen)" in name
                      or EXPECTED.get(name.split(" ")[0], (1,))[0] is None)
        pct = lambda k: "%.0f %%" % (100 * r[k] / n) if judged else "-"
        print("| %s | %d | %s | %s | %d | %.0f %% | %s |" % (
            name, r["runs"], pct("detected"), pct("mechanism"), r["false_alarms"],
            100 * r["inconclusive"] / n, err))
    missed = [m for r in rows.values() for m in r["missed"]]
    if missed:
        print("\nmissed: " + ", ".join(missed))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("--runs", type=int, default=10)
    rec.add_argument("--first", type=int, default=0, metavar="N",
                     help="number the runs from N (their parameters are drawn from the number)")
    rec.add_argument("--only", action="append", default=[], metavar="SCENARIO",
                     help="just this scenario (repeatable)")
    rec.add_argument("--dir", default=os.path.join(ROOT, "target", "accuracy"))
    rec.add_argument("--offloads", choices=["alternate", "on", "off"], default="alternate",
                     help="veth offloads: on in odd runs (default), or in every run, or in none")
    rec.add_argument("--snaplen", type=int, default=SNAPLEN,
                     help="capture snap length (default %d, a router's; 65535: whole packets,"
                          " as tcpdump keeps them by default)" % SNAPLEN)
    rec.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="a lab.py parameter for every run, over the drawn one (repeatable; e.g."
                          " call_framing=opaque: calls whose media carries no RTP header)")
    rep = sub.add_parser("report")
    rep.add_argument("--dir", default=os.path.join(ROOT, "target", "accuracy"))
    rep.add_argument("--corpus", default=os.path.join(ROOT, "..", "shared", "corpus", "ndpi"))
    rep.add_argument("--json", action="store_true")
    rep.add_argument("--window", type=int, metavar="SECONDS",
                     help="judge windows of this length, as the daemon does (default: the whole trace)")
    rep.add_argument("--binary", default=BINARY, help="the throttlewatch to judge with (default: release)")
    rep.add_argument("--ipv6", action="store_true",
                     help="judge every trace rewritten over IPv6 (lab/ipv6.py; kept in DIR/ipv6)")
    args = ap.parse_args()
    if args.cmd == "report" and args.ipv6:
        args.ipv6_dir = os.path.join(args.dir, "ipv6")
        os.makedirs(args.ipv6_dir, exist_ok=True)
    record(args) if args.cmd == "record" else report(args)


if __name__ == "__main__":
    main()
