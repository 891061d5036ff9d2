#!/usr/bin/env python3
"""The lab's middleboxes under another traffic generator: real curl (TLS 1.3, HTTP/1.1, its own
connection reuse) against a threaded Python HTTPS server with a self-signed certificate,
instead of lab/traffic.py's workload. The namespaces, delay line, nftables and tc rules are
the lab's own (lab/lab.py's scenarios); only the traffic differs, so a detector that learned
the lab's traffic rather than the behaviour it names shows here. A benchmark, not a test.

    benches/other_generator.py sweep [--dir DIR] [--seeds 11,12] [--offloads on] [--cc bbr] [--binary BIN] [SCENARIO ...]
    benches/other_generator.py run SCENARIO SEED OUT.pcap

`sweep` records each scenario once per seed (20 s of traffic; default: the scenarios whose
rules do not depend on the lab's own ClientHello layout), analyzes each recording with the
release binary and prints the verdicts beside what the scenario should give. Needs root, what
lab/lab.py needs, curl and openssl; with calls, ffmpeg (libopus, libvpx).

The traffic, the same for the messenger and the control server: three large downloads
(1.5-4 MB) at random starts in the first 6 s, and every 2-4 s a page of 2-5 small objects
(5-60 kB) fetched over one kept-alive connection. With `--calls` (always in the call
scenarios), a call to each as well, instead of lab/traffic.py's: ffmpeg's RTP, no STUN, the
client's side first and the relay's (port 3478) 0.2 s later, either Opus audio (20, 40 or 60
ms frames, 24-64 kbit/s) or VP8 video (320x240, 15-30 frames a second, 300-700 kbit/s: frames
of several packets at once), drawn from the seed. With `--quic` (always in `quic-block`),
QUIC as well, from aioquic (`pip install aioquic`): every 2-4 s a connection to each host
fetching 20-200 kB on one stream, its Initials padded to 1,200 bytes as QUIC v1 asks.
"""
import argparse
import importlib.util
import json
import os
import random
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "lab"))
import lab as L  # noqa: E402  (the lab's namespaces, delay line and middlebox rules)

DURATION_S = 20
HOSTS = {"messenger": (L.MSG_ADDR, "media.lab-messenger.test"),
         "control": (L.CTL_ADDR, "www.lab-control.test")}
# What each scenario should give for the messenger: (finding, mechanism); None: no finding.
# SNI-triggered rules are left out: the lab matches the server name at its own ClientHello's
# offset, which curl's does not share (a real middlebox parses the extension).
EXPECTED = {
    "police": ("throttled", "policing"), "aggregate-police": ("throttled", "policing"),
    "shape": ("throttled", "shaping"), "random-loss": ("throttled", "random_loss"),
    "freeze": ("stalled", "freeze"), "handshake-stall": ("stalled", "drop"),
    "serverhello-drop": ("stalled", "drop"), "packets-then-drop": ("stalled", "drop"),
    "rst-midflow": ("reset", "rst_injection"),
    "congestion": None, "wifi-loss": None, "clean": None, "ctl-distance": None,
    # The call scenarios (`None` as the mechanism: any). Loss on the way up only happens past
    # the capture point, where nothing shows it (README, Accuracy).
    "call-loss": ("call_degraded", None), "call-police": ("call_degraded", None),
    "call-partial-loss": ("call_degraded", None), "media-die": ("call_degraded", None),
    "oneway-cut": ("call_degraded", "drop"),
    "quic-block": ("blocked", "drop"),
    # Its TCP to the messenger: SYNs dropped, or refused in the server's place (REJECT).
    "blackhole": ("blocked", "drop"),
    # Rules that match any TLS ClientHello (record type 0x16, handshake type 1), or none.
    "rst-handshake": ("reset", "rst_injection"), "rst-replace": ("reset", "rst_injection"),
    "freeze-some": ("stalled", "freeze"),
}
CALL_SCENARIOS = {"call-loss", "call-police", "call-partial-loss", "media-die", "oneway-cut"}
# How a blackhole run's middlebox treats the SYNs it blocks, by the seed (seed mod 3): curl
# sends a dropped SYN again and again until its deadline, and gives up on a refused one at
# once ("Connection refused" for a RST, "No route to host" for ICMP admin-prohibited).
BLACKHOLE_REJECT = ("drop", "icmp", "reset")
# The relay's port, which the lab's call rules match.
RELAY_PORT = 3478
QUIC_ALPN = "tw-bench"
# How long a QUIC fetch may take before the client gives up (a blocked handshake).
QUIC_TIMEOUT_S = 6


def quic_configuration(is_client, sni=None):
    from aioquic.quic.configuration import QuicConfiguration
    return QuicConfiguration(is_client=is_client, alpn_protocols=[QUIC_ALPN], server_name=sni,
                             verify_mode=ssl.CERT_NONE, idle_timeout=QUIC_TIMEOUT_S)


def quic_serve(cert, key, addrs):
    """QUIC servers on port 443 of `addrs`: a stream's request (a byte count) is answered
    with that many bytes."""
    import asyncio
    from aioquic.asyncio import QuicConnectionProtocol, serve
    from aioquic.quic.events import StreamDataReceived

    class Answer(QuicConnectionProtocol):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            # The request bytes of each stream not yet ended, of this connection.
            self.requests = {}

        def quic_event_received(self, event):
            if isinstance(event, StreamDataReceived):
                text = self.requests.pop(event.stream_id, b"") + event.data
                if not event.end_stream:
                    self.requests[event.stream_id] = text
                    return
                size = int(text or b"1000")
                self._quic.send_stream_data(event.stream_id, b"x" * size, end_stream=True)
                self.transmit()

    async def main():
        cfg = quic_configuration(False)
        cfg.load_cert_chain(cert, key)
        for addr in addrs:
            await serve(addr, 443, configuration=cfg, create_protocol=Answer)
        print("serving", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def quic_fetch(plan):
    """The client's QUIC fetches: `plan` is a JSON list of (seconds from now, address,
    server name, bytes)."""
    import asyncio
    from aioquic.asyncio import connect

    async def fetch(at, addr, sni, size):
        await asyncio.sleep(at)

        async def one():
            async with connect(addr, 443, configuration=quic_configuration(True, sni)) as client:
                reader, writer = await client.create_stream()
                writer.write(str(size).encode())
                writer.write_eof()
                await reader.read()

        try:
            await asyncio.wait_for(one(), QUIC_TIMEOUT_S)
        except (asyncio.TimeoutError, ConnectionError):
            pass

    async def main():
        await asyncio.gather(*(fetch(*f) for f in json.loads(plan)))

    asyncio.run(main())


class Handler(BaseHTTPRequestHandler):
    """GET /N answers N bytes."""
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        try:
            n = int(self.path.strip("/").split("?")[0])
        except ValueError:
            n = 1000
        self.send_response(200)
        self.send_header("Content-Length", str(n))
        self.end_headers()
        chunk = b"x" * 65536
        while n > 0:
            self.wfile.write(chunk[:min(n, len(chunk))])
            n -= len(chunk)

    def log_message(self, *args):
        pass


def serve(cert, key, addrs):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    for addr in addrs:
        server = ThreadingHTTPServer((addr, 443), Handler)
        # The TLS handshake in the request's own thread, not in accept(): one stalled
        # handshake must not hold up the other connections.
        server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("serving", flush=True)
    threading.Event().wait()


def certificate(tmp):
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    names = ",".join("DNS:" + sni for _, sni in HOSTS.values())
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=lab", "-addext",
                    "subjectAltName=" + names], check=True, capture_output=True)
    return cert, key


def call_media(rng, video):
    """ffmpeg's input and encoder arguments for one side of a call, drawn from `rng`, and
    what they make, in words."""
    if video:
        fps, kbit = rng.choice((15, 20, 30)), rng.randint(300, 700)
        what = "VP8 %d fps %d kbit/s" % (fps, kbit)
        # At a constant rate: libvpx's realtime mode undershoots a simple picture by half.
        return ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=%d" % fps, "-c:v", "libvpx",
                "-deadline", "realtime", "-cpu-used", "8", "-b:v", "%dk" % kbit,
                "-minrate", "%dk" % kbit, "-maxrate", "%dk" % kbit, "-g", str(fps * 2)], what
    frame_ms, kbit = rng.choice((20, 40, 60)), rng.randint(24, 64)
    return ["-f", "lavfi", "-i", "sine=frequency=%d:sample_rate=48000" % rng.randint(200, 900),
            "-c:a", "libopus", "-application", "voip", "-frame_duration", str(frame_ms),
            "-b:a", "%dk" % kbit], "Opus %d ms %d kbit/s" % (frame_ms, kbit)


def start_calls(lab, rng, video, seconds):
    """A call from the client to each host's relay port: the client's side first, the
    relay's 0.2 s later (so that conntrack sees the client open it). Returns the processes
    and the media of the messenger's call, client's side first, in words."""
    procs, media = [], []
    for addr, _ in HOSTS.values():
        port = rng.randrange(20000, 60000, 2)
        ends = [(lab.client, "rtp://%s:%d?localport=%d" % (addr, RELAY_PORT, port)),
                (lab.server, "rtp://%s:%d?localport=%d&localaddr=%s"
                 % (L.CLIENT_ADDR, port, RELAY_PORT, addr))]
        for ns, url in ends:
            args, what = call_media(rng, video)
            media.append(what)
            argv = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re"] + args + \
                ["-t", "%.1f" % seconds, "-f", "rtp", url]
            procs.append(lab.spawn(ns, argv, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL))
            time.sleep(0.2)
    return procs, " / ".join(media[:2])


def params(name, seed):
    """The lab scenario's parameters for a run: drawn from the seed, and for `blackhole` its
    TCP only (curl's) with the seed's way of blocking."""
    p, _ = L.resolve_params(name, {}, DURATION_S, seed)
    if name == "blackhole":
        p.update(proto="tcp", reject=BLACKHOLE_REJECT[seed % len(BLACKHOLE_REJECT)])
    return p


def expected(name, p):
    """What the run should give for the messenger: (finding, mechanism), None: no finding."""
    if name == "blackhole" and p["reject"] != "drop":
        return ("blocked", "reject")
    return EXPECTED[name]


def record(name, seed, out, offloads=False, calls=False, media_kind="drawn", quic=False, cc="cubic"):
    """Record one run; returns the messenger call's media in words ("" without calls).
    `media_kind`: the calls' "audio" or "video", or "drawn" from the seed; `cc` the TCP
    congestion control of every sender."""
    p = params(name, seed)
    media = ""
    calls = calls or name in CALL_SCENARIOS
    quic = quic or name == "quic-block"
    scenario = L.SCENARIOS[name]
    rng = random.Random(seed)
    plan = [(rng.uniform(0, 6), [rng.randint(1500, 4000) * 1000]) for _ in range(3)]
    t = 0.5
    while t < DURATION_S - 4:
        plan.append((t, [rng.randint(5, 60) * 1000 for _ in range(rng.randint(2, 5))]))
        t += rng.uniform(2, 4)
    events = sorted((at, svc, sizes) for at, sizes in plan for svc in HOSTS)
    with tempfile.TemporaryDirectory() as tmp, L.Lab(offloads=offloads) as lab:
        cert, key = certificate(tmp)
        lab.delay(scenario.delays(p))
        L.set_congestion_control(lab, cc)
        rules = scenario.rules(p)
        if rules:
            L.sh("nft", "-f", "-", ns=lab.router, input="table inet lab {%s\n}\n" % rules)
        for cmd in scenario.tc(p):
            L.sh(*cmd, ns=lab.router)
        L.start_helpers(lab, scenario, p)
        # (Its stderr: a curl that gives up at its deadline makes the server print a traceback.)
        server = lab.spawn(lab.server, [sys.executable, __file__, "serve", cert, key] +
                           [addr for addr, _ in HOSTS.values()], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        if server.stdout.readline().strip() != "serving":
            raise L.LabError("the HTTPS servers did not start")
        if quic:
            quic_server = lab.spawn(lab.server, [sys.executable, __file__, "quic-serve", cert, key] +
                                    [addr for addr, _ in HOSTS.values()], stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, text=True)
            if quic_server.stdout.readline().strip() != "serving":
                raise L.LabError("the QUIC servers did not start")
        capture = lab.spawn(lab.router, ["tcpdump", "-n", "-q", "-Z", "root", "-B", "16384", "-i",
                                         L.LAN_IF, "-s", "256", "-w", out],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if "listening" not in capture.stderr.readline():
            raise L.LabError("tcpdump did not start")
        time.sleep(0.3)
        start = time.time()
        clients = []
        if quic:
            quic_plan, t = [], rng.uniform(0.5, 2)
            while t < DURATION_S - 4:
                quic_plan += [(t, addr, sni, rng.randint(20, 200) * 1000) for addr, sni in HOSTS.values()]
                t += rng.uniform(2, 4)
            clients.append(lab.spawn(lab.client, [sys.executable, __file__, "quic-fetch",
                                                  json.dumps(quic_plan)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        if calls:
            # A policer of the lab's call rate bites on video, not on audio's few kbit/s.
            if media_kind == "drawn":
                video = name == "call-police" or rng.random() < 0.5
            else:
                video = media_kind == "video"
            procs, media = start_calls(lab, rng, video, DURATION_S - 3)
            clients += procs
        for at, svc, sizes in events:
            time.sleep(max(0.0, start + at - time.time()))
            addr, sni = HOSTS[svc]
            argv = ["curl", "-sk", "--max-time", str(max(3, int(DURATION_S - at))),
                    "--resolve", "%s:443:%s" % (sni, addr)]
            for size in sizes:
                argv += ["-o", "/dev/null", "https://%s/%d" % (sni, size)]
            clients.append(lab.spawn(lab.client, argv, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL))
        for c in clients:
            c.wait()
        time.sleep(2)
        capture.send_signal(signal.SIGTERM)
        capture.communicate(timeout=10)
    return media


def verdicts(binary, pcap):
    out = subprocess.run([binary, "analyze", "--format", "json", "--services",
                          os.path.join(ROOT, "samples", "lab-whatsapp.toml"), pcap],
                         capture_output=True, text=True)
    return [(v["finding"], v.get("mechanism")) for v in json.loads(out.stdout)["verdicts"]
            if v["service"] == "whatsapp"]


def sweep(args):
    os.makedirs(args.dir, exist_ok=True)
    names = args.scenarios or list(EXPECTED)
    unknown = [n for n in names if n not in EXPECTED]
    if unknown:
        sys.exit("no such scenario here: %s (known: %s)" % (", ".join(unknown), ", ".join(EXPECTED)))
    calls = args.calls or not CALL_SCENARIOS.isdisjoint(names)
    missing = [tool for tool, wanted in (("curl", True), ("openssl", True), ("ffmpeg", calls))
               if wanted and shutil.which(tool) is None]
    if (args.quic or "quic-block" in names) and importlib.util.find_spec("aioquic") is None:
        missing.append("aioquic (pip install aioquic)")
    if missing:
        sys.exit("other_generator.py sweep needs: %s" % ", ".join(missing))
    # Runs, right finding, right finding and mechanism; confounders: runs, false alarms.
    found = [0, 0, 0]
    confounders = [0, 0]
    for name in names:
        for seed in [int(s) for s in args.seeds.split(",")]:
            pcap = os.path.join(args.dir, "%s-%d.pcap" % (name, seed))
            media = record(name, seed, pcap, args.offloads == "on", args.calls, args.media, args.quic,
                           args.cc)
            got = verdicts(args.binary, pcap)
            findings = [v for v in got if v[0] not in ("none", "inconclusive")]
            drawn = params(name, seed)
            want_pair = expected(name, drawn)
            want = "%s/%s" % want_pair if want_pair else "no finding"
            if name == "blackhole":
                want += " (%s)" % drawn["reject"]
            if name == "call-partial-loss" and drawn["direction"] == "up":
                # Past the capture point: nothing the capture holds shows it (README, Accuracy).
                want, answer = "loss up only", "not counted"
            elif want_pair:
                finding = any(f == want_pair[0] for f, _ in findings)
                right = any(f == want_pair[0] and want_pair[1] in (None, m) for f, m in findings)
                found[0] += 1
                found[1] += finding
                found[2] += right
                answer = "right" if right else "finding only" if finding else "MISSED"
            else:
                confounders[0] += 1
                confounders[1] += bool(findings)
                answer = "FALSE ALARM" if findings else "right"
            print("%-18s %-4d %-26s %-12s %s %s" % (name, seed, want, answer, got, media), flush=True)
    print("impairments: %d runs, %d with the right finding, %d also with the mechanism; "
          "confounders: %d runs, %d false alarms" % (*found, *confounders))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sw = sub.add_parser("sweep")
    sw.add_argument("--dir", default=os.path.join(ROOT, "target", "other-generator"))
    sw.add_argument("--seeds", default="11,12")
    sw.add_argument("--offloads", choices=("on", "off"), default="off",
                    help="the veths' GRO/GSO offloads (default: off)")
    sw.add_argument("--cc", choices=("cubic", "bbr", "reno"), default="cubic",
                    help="the senders' TCP congestion control (default: cubic, Linux's)")
    sw.add_argument("--calls", action="store_true",
                    help="a call to each host in every scenario (always in the call scenarios)")
    sw.add_argument("--quic", action="store_true",
                    help="QUIC fetches from aioquic in every scenario (always in quic-block)")
    sw.add_argument("--media", choices=("drawn", "audio", "video"), default="drawn",
                    help="the calls' media (default: drawn from the seed; call-police: video)")
    sw.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "throttlewatch"))
    sw.add_argument("scenarios", nargs="*", help="of: " + ", ".join(EXPECTED))
    rn = sub.add_parser("run")
    rn.add_argument("scenario", choices=list(EXPECTED))
    rn.add_argument("seed", type=int)
    rn.add_argument("out")
    for command in ("serve", "quic-serve"):
        sv = sub.add_parser(command)
        sv.add_argument("cert")
        sv.add_argument("key")
        sv.add_argument("addrs", nargs="+")
    qf = sub.add_parser("quic-fetch")
    qf.add_argument("plan")
    args = ap.parse_args()
    if args.cmd == "serve":
        serve(args.cert, args.key, args.addrs)
    elif args.cmd == "quic-serve":
        quic_serve(args.cert, args.key, args.addrs)
    elif args.cmd == "quic-fetch":
        quic_fetch(args.plan)
    elif args.cmd == "run":
        record(args.scenario, args.seed, args.out)
    else:
        sweep(args)


if __name__ == "__main__":
    main()
