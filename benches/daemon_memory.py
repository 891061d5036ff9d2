#!/usr/bin/env python3
"""The daemon's resident memory on a router's settings (README, Router CPUs): `throttlewatch
run --uci` with the OpenWrt package's /etc/config/throttlewatch (openwrt/throttlewatch/files),
on the lab router's LAN interface, through a busy home network (the lab's whole workload with
a short fetch every 0.2 s, both services, for --busy-seconds) and then a flood of --flood
unique UDP 5-tuples towards the messenger's address (every packet passes the kernel filter:
the table's worst case); VmRSS from /proc every half second. A benchmark, not a test: one run.

    benches/daemon_memory.py [--flood 1000000] [--busy-seconds 30] [--after-seconds 70] [--binary BIN]

Needs root and what lab/lab.py needs; build the binary first (cargo build --release).
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "lab"))
import lab  # noqa: E402  (the lab's namespaces, workload and traffic generator)

UCI = os.path.join(ROOT, "openwrt", "throttlewatch", "files", "throttlewatch.config")

# Sends `count` UDP datagrams, each on a 5-tuple of its own: 64 client sockets (ports) times
# destination ports 1024-65535 of one server address.
FLOOD = r"""
import socket, sys
addr, count = sys.argv[1], int(sys.argv[2])
socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(64)]
payload = b"x" * 32
sent = 0
for port in range(1024, 65536):
    for s in socks:
        if sent == count:
            break
        try:
            s.sendto(payload, (addr, port))
        except OSError:
            pass
        sent += 1
print(sent)
"""


def uci_file(out, services):
    """The package's UCI file with the lab's interface, paths in `out`, no user switch (the
    lab has no `throttlewatch` account) and the lab's catalogue."""
    lines = []
    for line in open(UCI):
        key = line.split()[1] if len(line.split()) > 1 else ""
        if key in ("interface", "events", "status", "history", "user"):
            continue
        lines.append(line)
    lines += ["\tlist interface '%s'\n" % lab.LAN_IF,
              "\toption events '%s'\n" % os.path.join(out, "events.jsonl"),
              "\toption status '%s'\n" % os.path.join(out, "status.json"),
              "\toption history '%s'\n" % os.path.join(out, "history.json"),
              "\toption user ''\n",
              "\toption services '%s'\n" % services]
    path = os.path.join(out, "throttlewatch.uci")
    with open(path, "w") as f:
        f.writelines(lines)
    return path


def rss_kib(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flood", type=int, default=1_000_000, help="unique 5-tuples")
    ap.add_argument("--busy-seconds", type=int, default=30)
    ap.add_argument("--after-seconds", type=int, default=70,
                    help="after the flood: longer than the window (60 s), so one is judged")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "throttlewatch"))
    args = ap.parse_args()
    if not os.access(args.binary, os.X_OK):
        sys.exit("no binary at %s: cargo build --release first" % args.binary)
    lab.need_root_and_tools()
    out = tempfile.mkdtemp(prefix="tw-memory-bench-")
    config = uci_file(out, os.path.join(ROOT, "samples", "lab-services.toml"))
    samples = []  # (seconds since start, phase, RSS KiB)
    phase = ["start"]
    with lab.Lab() as l:
        server = l.spawn(l.server, [sys.executable, lab.TRAFFIC, "serve"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        if server.stdout.readline().strip() != "serving":
            sys.exit("the lab servers did not start: " + server.stderr.read())
        log = open(os.path.join(out, "daemon.log"), "w")
        daemon = l.spawn(l.router, [args.binary, "run", "--uci", config],
                         stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.time() + 60
        while "metrics on" not in open(log.name).read():
            if daemon.poll() is not None or time.time() > deadline:
                sys.exit("the daemon did not start: " + open(log.name).read())
            time.sleep(0.1)
        t0 = time.time()
        done = threading.Event()

        def sample():
            while not done.is_set() and daemon.poll() is None:
                samples.append((time.time() - t0, phase[0], rss_kib(daemon.pid)))
                time.sleep(0.5)
        sampler = threading.Thread(target=sample)
        sampler.start()
        time.sleep(2)
        # A busy home network: every kind of flow of the lab's workload, both services, with
        # a short fetch every 0.2 s (TLS connections come and go).
        phase[0] = "busy"
        p = {"download_kb": 400, "upload_kb": 100, "stream_kbit": 800, "video_kbit": 300,
             "fetch_every_s": 0.2, "flow_max_s": args.busy_seconds, "quic_kb": 200, "probes": 1,
             "p2p": 0, "msg_addrs": 2, "domestic": 1, "cross_kb": 200}
        specs = lab.workload(p, args.busy_seconds, random.Random(1))
        client = l.spawn(l.client, [sys.executable, lab.TRAFFIC, "client"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        client.stdin.write(json.dumps(specs))
        client.stdin.close()
        client.stdin = None
        client.communicate(timeout=args.busy_seconds + 120)
        phase[0] = "flood"
        flood_started = time.time()
        sent = subprocess.run(["ip", "netns", "exec", l.client, sys.executable, "-c", FLOOD,
                               lab.MSG_ADDR, str(args.flood)], capture_output=True, text=True)
        flood_s = time.time() - flood_started
        phase[0] = "after"
        time.sleep(args.after_seconds)
        done.set()
        sampler.join()
        daemon.terminate()
        daemon.wait(timeout=30)
        log.close()
    print("daemon: %s, %s" % (args.binary, "OpenWrt UCI defaults (%s)" % os.path.relpath(UCI, ROOT)))
    print("flood: %s unique 5-tuples in %.1f s" % (sent.stdout.strip() or "?", flood_s))
    print()
    print("| phase | seconds | RSS at start | RSS peak | RSS at end |")
    print("|---|---:|---:|---:|---:|")
    for name in ("start", "busy", "flood", "after"):
        rows = [s for s in samples if s[1] == name and s[2] is not None]
        if rows:
            print("| %s | %.0f | %.1f MB | %.1f MB | %.1f MB |" % (
                name, rows[-1][0] - rows[0][0], rows[0][2] / 1024,
                max(r[2] for r in rows) / 1024, rows[-1][2] / 1024))
    print()
    print("RSS over time (every 5 s, MB): " + ", ".join(
        "%.0fs %s %.1f" % (s[0], s[1], s[2] / 1024) for s in samples[::10] if s[2] is not None))
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
