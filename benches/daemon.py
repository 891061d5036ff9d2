#!/usr/bin/env python3
"""The daemon under lab load (README): `throttlewatch run` on the lab router's LAN interface
while the lab carries paced streams at several rates (and unpaced bulk transfers), no added
delay; reports the packets per second it saw, its CPU share of one core, and the kernel's
capture drops, for each number of capture workers asked (`capture_workers`: each worker's
packets are shown too). A benchmark, not a test: figures are from one run on this machine.

    benches/daemon.py [--rates 1,10,50,max] [--workers 1] [--seconds 20]
                      [--binary target/release/throttlewatch]

Needs root and what lab/lab.py needs, plus curl; build the binary first (cargo build --release).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def metric(text, name):
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", default="1,10,50,max", help="Mbit/s per stream pair, or max")
    ap.add_argument("--workers", default="1", help="capture workers, e.g. 1,2")
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "throttlewatch"))
    args = ap.parse_args()
    if not os.access(args.binary, os.X_OK):
        sys.exit("no binary at %s: cargo build --release first" % args.binary)
    out = tempfile.mkdtemp(prefix="tw-daemon-bench-")
    print("| load | capture workers | packets/s read | daemon CPU (share of one core) "
          "| kernel drops | packets by worker |")
    print("|---|---:|---:|---:|---:|---|")
    runs = [(r, int(w)) for r in args.rates.split(",") for w in args.workers.split(",")]
    for rate, workers in runs:
        params = {"rtt_ms": 0, "ctl_rtt_ms": 0, "video_kbit": 0, "fetch_every_s": 60,
                  "upload_kb": 1}
        if rate == "max":
            params.update(download_kb=2_000_000, stream_kbit=8)
            label = "unpaced bulk downloads"
        else:
            # Two paced streams (messenger and control) share the rate.
            params.update(download_kb=1, stream_kbit=int(float(rate) * 1000 / 2))
            label = "%s Mbit/s of paced streams" % rate
        prefix = os.path.join(out, "load-%s-%d" % (rate, workers))
        cmd = [sys.executable, os.path.join(ROOT, "lab", "lab.py"), "run", "clean", "--quiet",
               "--duration", str(args.seconds), "--snaplen", "128", "--out", prefix,
               "--daemon", args.binary, "--daemon-window", "5",
               "--daemon-set", "capture_workers=%d" % workers]
        for k, v in params.items():
            cmd += ["--set", "%s=%s" % (k, v)]
        subprocess.run(cmd, check=True)
        truth = json.load(open(prefix + ".truth.json"))
        d = truth["daemon"]
        metrics = open(prefix + ".metrics.txt").read()
        packets = metric(metrics, 'throttlewatch_packets_total{interface="lan0"}') or 0
        drops = metric(metrics, 'throttlewatch_kernel_drops_total{interface="lan0"}')
        # The daemon's CPU time over the seconds the traffic ran (it idles before and after).
        busy = truth["ended"] - truth["started"]
        shares = [metric(metrics, 'throttlewatch_worker_packets_total{worker="%d"}' % w)
                  for w in range(workers)]
        print("| %s | %d | %.0f | %.1f %% | %s of %d | %s |" % (
            label, workers, packets / busy, 100 * d["cpu_s"] / busy,
            "%d" % drops if drops is not None else "?", packets + (drops or 0),
            " / ".join("%.0f" % n if n is not None else "?" for n in shares)))


if __name__ == "__main__":
    main()
