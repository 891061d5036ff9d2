#!/usr/bin/env python3
"""The throttlewatch lab (ARCHITECTURE.md): real kernels, a real middlebox, labelled traces.

    lab/lab.py list                          # scenarios, their parameters and defaults
    lab/lab.py run SCENARIO [--set K=V]... [--seed N] [--duration S] [--snaplen N] [--out PREFIX]
                    [--offloads on|off] [--daemon BINARY [--daemon-window S] [--reload-check]]
    lab/lab.py fixtures [--dir samples/lab]  # re-record the committed fixture traces
    lab/lab.py bench [--out FILE] [--megabytes N]   # the large performance trace
    lab/lab.py clean                         # remove namespaces left by a killed run

`run` builds three network namespaces with names unique to the run,

    client 192.168.50.2 -- lan0 [router] wan0 -- 192.0.2.2 server: 198.51.100.10 (messenger)
                                                                  198.51.100.11 (messenger, 2nd)
                                                                  203.0.113.10  (control)
                                                                  203.0.113.53  (DNS)
                                                                  198.18.0.10   (domestic)
                                                                  203.0.113.80  (cross traffic)
                                                                  203.0.113.70/.71 (call peers)

adds base round trips with a userspace delay line on the router (the kernel has no netem),
makes the router the scenario's middlebox (nftables, tc), runs the same mixed workload to the
messenger and to the control address (lab/traffic.py), captures on the router's LAN interface
and writes PREFIX.pcap and PREFIX.truth.json (schema throttlewatch.lab-truth/1: the flows, which
of them the middlebox acted on, the mechanism, configured rate/threshold/onset, the rules and
their counters, and what the applications measured). Parameters given as ranges in `list` are
drawn per run from --seed (`--set` fixes them); the truth lists the values drawn. Confounder
scenarios impair nothing (every flow `impaired: false`; `disturbed` marks what they touch).
`--offloads on` leaves TSO/GSO/GRO on on the veths: the capture then holds super-segments, as on
many Linux routers (the truth says `offloads`). The namespaces are removed at the end,
also on errors and on SIGINT/SIGTERM/SIGHUP; `clean` removes those of a run that was killed.
Only addresses inside the run's own namespaces are used: nothing can leave them.

Needs root, iproute2, nftables, tcpdump and python3 (ethtool to turn off offloads).
Exit status: 0 written, 1 the run failed, 2 bad usage or a missing tool/privilege.
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import traffic
from traffic import (CROSS_ADDR, CTL_ADDR, CTL_PEER_ADDR, DNS_ADDR, DOM_ADDR, MSG2_ADDR, MSG_ADDR,
                     MSG_PEER_ADDR, PEER_PORT, PROBE_PORTS)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TRAFFIC = os.path.join(HERE, "traffic.py")

CLIENT_ADDR = "192.168.50.2"
ROUTER_LAN_ADDR = "192.168.50.1"
ROUTER_WAN_ADDR = "192.0.2.1"
SERVER_WAN_ADDR = "192.0.2.2"
SERVER_ADDRS = (MSG_ADDR, MSG2_ADDR, CTL_ADDR, DNS_ADDR, DOM_ADDR, CROSS_ADDR, MSG_PEER_ADDR,
                CTL_PEER_ADDR)
LAN_IF, WAN_IF, DELAY_IF = "lan0", "wan0", "dly0"
# Packets the delay line's TUN device queues before its reader takes them (the kernel's
# default is 500).
DELAY_QUEUE_PACKETS = 20000
NS_PREFIX = "twlab-"
TRUTH_SCHEMA = "throttlewatch.lab-truth/1"
SERVICES = {
    "messenger": {"addr": MSG_ADDR, "domain": "lab-messenger.test", "peer": MSG_PEER_ADDR},
    "control": {"addr": CTL_ADDR, "domain": "lab-control.test", "peer": CTL_PEER_ADDR},
}


class LabError(Exception):
    """A failed run, with a message for the user (exit status 1)."""
    status = 1


class Interrupted(BaseException):
    """SIGTERM or SIGHUP: unwinds like SIGINT, so the namespaces are removed."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


class UsageError(LabError):
    """Bad input, or a missing tool or privilege (exit status 2)."""
    status = 2


# ---------------------------------------------------------------- namespaces

def sh(*argv, ns=None, input=None, check=True):
    """Run a command (inside namespace `ns`), return stdout; a failure names the command."""
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(argv)
    p = subprocess.run(cmd, input=input, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise LabError("`%s` failed (exit %d): %s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
    return p.stdout


def set_congestion_control(lab, cc):
    """Every sender's TCP congestion control, in the client's and the server's namespaces
    (IPv6 too; BBR paces its sends and does not back off on loss). Set even for cubic: a new
    namespace inherits the host's default, which may be another (a kernel built with BBR as
    its default). A namespace may only choose what the host allows: `cc` is added to the
    host's tcp_allowed_congestion_control first when it is not there (its default is not
    changed)."""
    allowed_path = "/proc/sys/net/ipv4/tcp_allowed_congestion_control"
    with open("/proc/sys/net/ipv4/tcp_available_congestion_control") as f:
        available = f.read().split()
    if cc not in available:
        sh("modprobe", "tcp_" + cc, check=False)
        with open("/proc/sys/net/ipv4/tcp_available_congestion_control") as f:
            if cc not in f.read().split():
                raise LabError("cc=%s: this kernel has no such TCP congestion control (it has %s)"
                               % (cc, " ".join(available)))
    with open(allowed_path) as f:
        allowed = f.read().split()
    if cc not in allowed:
        sh("sysctl", "-qw", "net.ipv4.tcp_allowed_congestion_control=" + " ".join(allowed + [cc]))
    for ns in (lab.client, lab.server):
        sh("sysctl", "-qw", "net.ipv4.tcp_congestion_control=" + cc, ns=ns)


def start_helpers(lab, scenario, p):
    """The scenario's userspace middlebox parts (traffic.py), in the router's namespace; each
    says "ready" once it listens."""
    for argv in scenario.helpers(p):
        helper = lab.spawn(lab.router, [sys.executable, TRAFFIC] + argv, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        if helper.stdout.readline().strip() != "ready":
            raise LabError("the middlebox helper %s did not start: %s" % (argv[0], helper.stderr.read()))


class Lab:
    """Three namespaces, torn down by close() whatever happened."""
    _count = 0

    def __init__(self, offloads=False):
        self.offloads = offloads
        Lab._count += 1
        base = "%s%d-%d" % (NS_PREFIX, os.getpid(), Lab._count)
        self.client, self.router, self.server = base + "-c", base + "-r", base + "-s"
        self.procs = []
        self.created = []

    def __enter__(self):
        try:
            self.up()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def up(self):
        for ns in (self.client, self.router, self.server):
            sh("ip", "netns", "add", ns)
            self.created.append(ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
        # Create each veth pair inside the router namespace, then move the peer: no name is
        # ever taken in the namespace the lab runs from, so runs can overlap.
        r = self.router
        sh("ip", "link", "add", LAN_IF, "type", "veth", "peer", "name", "lanpeer", ns=r)
        sh("ip", "link", "add", WAN_IF, "type", "veth", "peer", "name", "wanpeer", ns=r)
        sh("ip", "link", "set", "lanpeer", "netns", self.client, "name", "eth0", ns=r)
        sh("ip", "link", "set", "wanpeer", "netns", self.server, "name", "eth0", ns=r)
        c, s = self.client, self.server
        sh("ip", "addr", "add", CLIENT_ADDR + "/24", "dev", "eth0", ns=c)
        sh("ip", "link", "set", "eth0", "up", ns=c)
        sh("ip", "route", "add", "default", "via", ROUTER_LAN_ADDR, ns=c)
        sh("ip", "addr", "add", ROUTER_LAN_ADDR + "/24", "dev", LAN_IF, ns=r)
        sh("ip", "addr", "add", ROUTER_WAN_ADDR + "/24", "dev", WAN_IF, ns=r)
        for dev in (LAN_IF, WAN_IF):
            sh("ip", "link", "set", dev, "up", ns=r)
        for addr in SERVER_ADDRS:
            sh("ip", "route", "add", addr + "/32", "via", SERVER_WAN_ADDR, ns=r)
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=r)
        # `ct bytes` needs conntrack accounting.
        sh("sysctl", "-qw", "net.netfilter.nf_conntrack_acct=1", ns=r, check=False)
        sh("ip", "addr", "add", SERVER_WAN_ADDR + "/24", "dev", "eth0", ns=s)
        for addr in SERVER_ADDRS:
            sh("ip", "addr", "add", addr + "/32", "dev", "lo", ns=s)
        sh("ip", "link", "set", "eth0", "up", ns=s)
        sh("ip", "route", "add", "192.168.50.0/24", "via", ROUTER_WAN_ADDR, ns=s)
        # Routers see MTU-sized packets, not 64 KB offload "segments" (unless the run asks for
        # offloads: then the capture holds GSO/GRO super-segments, as on many Linux routers).
        if shutil.which("ethtool"):
            state = "on" if self.offloads else "off"
            for ns, dev in ((c, "eth0"), (r, LAN_IF), (r, WAN_IF), (s, "eth0")):
                sh("ethtool", "-K", dev, "tso", state, "gso", state, "gro", state, ns=ns, check=False)
        elif self.offloads:
            raise UsageError("--offloads on needs ethtool (apt-get install ethtool)")

    def spawn(self, ns, argv, **kw):
        p = subprocess.Popen(["ip", "netns", "exec", ns] + argv, **kw)
        self.procs.append(p)
        return p

    def delay(self, delays_ms):
        """Base round trips: packets to each address wait `ms` in the delay line (one way is
        enough for the round trip). What comes back out of the TUN device is policy-routed on
        to the server."""
        r = self.router
        rules = ["%s=%s" % (a, ms) for a, ms in delays_ms.items() if ms > 0]
        if not rules:
            return
        p = self.spawn(r, [sys.executable, TRAFFIC, "delay", DELAY_IF] + rules,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.stdout.readline().strip() != "delaying":
            raise LabError("the delay line did not start: " + p.stderr.read().strip())
        # The device's queue holds what the delay line has not read yet: with the default
        # 500 packets, a cubic upload's slow-start burst overflowed it and the lab itself
        # dropped 11 % of a 2-MB upload (README, "The lab's cubic was BBR"). The lab's
        # losses are its scenarios' alone; `delay_line_dropped` in the truth counts any.
        sh("ip", "link", "set", DELAY_IF, "txqueuelen", str(DELAY_QUEUE_PACKETS), "up", ns=r)
        # What the delay line re-injects is the same packet again: conntrack counts it once.
        sh("nft", "-f", "-", ns=r, input='table inet labdelay {\n chain raw {\n  type filter hook prerouting '
           'priority raw; policy accept;\n  iifname "%s" notrack\n }\n}\n' % DELAY_IF)
        sh("sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.%s.rp_filter=0" % DELAY_IF, ns=r)
        sh("ip", "route", "add", "192.0.2.0/24", "dev", WAN_IF, "table", "100", ns=r)
        sh("ip", "rule", "add", "iif", DELAY_IF, "table", "100", ns=r)
        for addr in delays_ms:
            if delays_ms[addr] > 0:
                sh("ip", "route", "add", addr + "/32", "via", SERVER_WAN_ADDR, "dev", WAN_IF, "table", "100", ns=r)
                sh("ip", "route", "replace", addr + "/32", "dev", DELAY_IF, ns=r)

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for ns in self.created:
            remove_namespace(ns)
        self.created = []


def remove_namespace(ns):
    pids = sh("ip", "netns", "pids", ns, check=False).split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    sh("ip", "netns", "del", ns, check=False)


def clean_stale(verbose=False):
    """Remove lab namespaces whose run (the pid in the name) is gone."""
    removed = 0
    for line in sh("ip", "netns", "list", check=False).splitlines():
        m = re.match(r"(%s(\d+)-\d+-[crs])\b" % NS_PREFIX, line)
        if not m:
            continue
        pid = int(m.group(2))
        try:
            os.kill(pid, 0)
            alive = True
        except ProcessLookupError:
            alive = False
        except PermissionError:
            alive = True
        if not alive:
            remove_namespace(m.group(1))
            removed += 1
    if verbose:
        print("removed %d stale lab namespace(s)" % removed)


# ---------------------------------------------------------------- the workload

DEFAULTS = {
    "rtt_ms": 40,  # base round trip to the messenger (20-100 ms realistic)
    "ctl_rtt_ms": 30,  # base round trip to the control server
    "download_kb": 1500,  # each of two bulk downloads per service
    "upload_kb": 600,  # one bulk upload per service
    "stream_kbit": 2000,  # one paced video-like download per service
    "video_kbit": 300,  # video in each call (0: audio only)
    "call_framing": "rtp",  # the calls' media: RTP, or "opaque" (a call protocol of its own)
    "fetch_every_s": 1.5,  # short HTTPS-like fetches, 4-48 kB
    "flow_max_s": 15,  # longest TLS download/upload (raise with --duration for flows spanning windows)
    "quic_kb": 0,  # a QUIC-like fetch per service over UDP/443 (0: none)
    "probes": 0,  # 1: 40-byte relay probes to UDP 596-599/1400 per service, every 0.5 s
    "msg_addrs": 1,  # 2: every second messenger TLS flow goes to its second address
    "domestic": 0,  # 1: a download and fetches to a "domestic" server as well
    "p2p": 0,  # 1: each service's call asks its relay by STUN, then runs peer-to-peer with a peer
    "cross_kb": 0,  # bursts of downloads of this size from a cross-traffic server (0: none)
    "tcp_timestamps": 1,  # 0: the client sends no TCP timestamps (as Windows by default)
    "hello_ms": 0,  # the TLS-like servers' pause before their ServerHello (its ACK goes first)
    "cc": "cubic",  # every sender's TCP congestion control: cubic (Linux's), bbr or reno
    "mtu": 1500,  # every link's MTU, 1280-1500 (1492: PPPoE; 1400 and less: tunnels, mobile paths)
    # Where the trace is taken: the router's LAN interface (the impairments between it and the
    # servers), or its WAN interface, as on a router's `wan` or an ISP's mirror of its uplink
    # (the server's packets seen before the router drops them, the client's after).
    "capture": "lan",
}


def workload(p, duration, rng):
    """The same mix towards the messenger and the control address, with the same sizes, so
    every impaired flow has comparable control flows: DNS, a call (STUN + RTP both ways, with the
    relay or, with `p2p`, with a peer after STUN with the relay), chat,
    two bulk downloads, an upload, a paced stream and short fetches; optionally QUIC-like
    fetches, relay probes, a domestic server and bursty cross traffic (added after the rest, so
    the base mix of a seed stays the same)."""
    d = duration
    longest = p["flow_max_s"]
    fetches = []
    t = 1.0
    while t < d - 2.5:
        fetches.append((round(t, 3), rng.randint(4, 48) * 1000))
        t += p["fetch_every_s"] * rng.uniform(0.6, 1.4)
    specs = []
    def add(svc, addr, kind, at, **kw):
        specs.append(dict(id=len(specs), service=svc, kind=kind, at=at, seed=rng.getrandbits(32),
                          server=kw.pop("server", addr), **kw))
    for svc, info in SERVICES.items():
        addr, dom = info["addr"], info["domain"]
        add(svc, addr, "dns", 0.0, server=DNS_ADDR, server_port=53, proto="udp", name="chat." + dom, max_s=2)
        if p["p2p"]:
            add(svc, addr, "call", 0.3, server=info["peer"], server_port=PEER_PORT, relay=addr,
                relay_port=3478, proto="udp", video_kbit=p["video_kbit"], keepalive_s=2.5,
                max_s=d - 0.8, framing=p["call_framing"])
        else:
            add(svc, addr, "call", 0.3, server_port=3478, proto="udp", video_kbit=p["video_kbit"],
                keepalive_s=2.5, max_s=d - 0.8, framing=p["call_framing"])
        add(svc, addr, "chat", 0.5, server_port=5222, proto="tcp", every_s=1.0, max_s=d - 1.0)
        for at in (1.0, round(d / 2, 3)):
            add(svc, addr, "tls", at, server_port=443, proto="tcp", op="get", sni="media." + dom,
                bytes=p["download_kb"] * 1000, max_s=min(d - at - 0.5, longest), idle_s=6)
        add(svc, addr, "tls", 2.0, server_port=443, proto="tcp", op="put", sni="upload." + dom,
            bytes=p["upload_kb"] * 1000, max_s=min(d - 2.5, longest), idle_s=6)
        add(svc, addr, "tls", 1.5, server_port=443, proto="tcp", op="stream", sni="video." + dom,
            kbit=p["stream_kbit"], bytes=int(p["stream_kbit"] * 125 * (d - 3)), max_s=d - 2.0, idle_s=6)
        for at, size in fetches:
            add(svc, addr, "tls", at, server_port=443, proto="tcp", op="get", sni="static." + dom,
                bytes=size, max_s=min(6, d - at - 0.3), idle_s=5)
    for svc, info in SERVICES.items():
        addr, dom = info["addr"], info["domain"]
        if p["quic_kb"]:
            for at in (1.2, round(d / 2 + 0.2, 3)):
                add(svc, addr, "quic", at, server_port=443, proto="udp", sni="quic." + dom,
                    bytes=p["quic_kb"] * 1000, max_s=min(d - at - 0.5, longest))
        if p["probes"]:
            for i, port in enumerate(PROBE_PORTS):
                add(svc, addr, "probe", 0.4 + 0.1 * i, server_port=port, proto="udp", every_s=0.5,
                    max_s=min(6.0, d - 1.5))
    if p["msg_addrs"] == 2:
        for i, spec in enumerate(s for s in specs if s["service"] == "messenger" and s["kind"] == "tls"):
            if i % 2:
                spec["server"] = MSG2_ADDR
    if p["domestic"]:
        dom = "lab-domestic.test"
        add("domestic", DOM_ADDR, "tls", 1.0, server_port=443, proto="tcp", op="get", sni="www." + dom,
            bytes=p["download_kb"] * 1000, max_s=min(d - 1.5, longest), idle_s=6)
        for at, size in fetches[::2]:
            add("domestic", DOM_ADDR, "tls", at, server_port=443, proto="tcp", op="get",
                sni="static." + dom, bytes=size, max_s=min(6, d - at - 0.3), idle_s=5)
    if p["cross_kb"]:
        # On/off: a burst of two or three parallel downloads every 1.5-4 s.
        t = 0.5
        while t < d - 2.0:
            for _ in range(rng.randint(2, 3)):
                add("cross", CROSS_ADDR, "tls", round(t, 3), server_port=443, proto="tcp", op="get",
                    sni="cdn.lab-cross.test", bytes=p["cross_kb"] * 1000, max_s=min(8, d - t - 0.3),
                    idle_s=6)
            t += rng.uniform(1.5, 4.0)
    return specs


def reply_bytes_estimate(spec):
    """IP bytes the server sends in a TLS flow (for `ct reply bytes` thresholds): ~3.3 kB of
    handshake, then data in 1,448-byte segments with 52 bytes of headers, or an ACK per two
    segments of an upload."""
    if spec["kind"] != "tls":
        return 0
    if spec["op"] == "put":
        return 3300 + spec["bytes"] // 2896 * 52
    return 3300 + spec["bytes"] * 1500 // 1448


# ---------------------------------------------------------------- scenarios

def police_rules(rate_kbit, burst_kb, protos="tcp, udp", tag="police"):
    """Per-flow token buckets (Flach et al.: policers act per flow), both directions."""
    rate_b = int(rate_kbit * 1000 / 8)
    burst_b = int(burst_kb * 1024)
    key = "ip saddr . th sport . ip daddr . th dport"
    limit = "limit rate over %d bytes/second burst %d bytes" % (rate_b, burst_b)
    return """
  set {tag} {{ type ipv4_addr . inet_service . ipv4_addr . inet_service; flags dynamic,timeout; timeout 60s; size 65536; }}
  chain {tag}_chain {{
    type filter hook forward priority 0; policy accept;
    ip saddr {msg} meta l4proto {{ {protos} }} add @{tag} {{ {key} {limit} }} counter drop comment "police down"
    ip daddr {msg} meta l4proto {{ {protos} }} add @{tag} {{ {key} {limit} }} counter drop comment "police up"
  }}""".format(tag=tag, msg=MSG_ADDR, protos=protos, key=key, limit=limit)


def chain(body, name="mbox"):
    return """
  chain %s {
    type filter hook forward priority 0; policy accept;
    %s
  }""" % (name, body)


class Scenario:
    """A middlebox behaviour. `params` holds its parameters' defaults; a (least, greatest) pair
    or a tuple of words is drawn per run from the seed unless `--set` gives the value."""
    confounder = False  # a condition that hits everything alike: no finding is right
    trigger = None  # what starts the impairment on a connection, if not the flow's start
    selection = None  # nft set (client address . port) in which the kernel records its choice

    def __init__(self, name, mechanism, doc, params, direction, scope, target):
        self.name, self.mechanism, self.doc = name, mechanism, doc
        self.params, self.direction, self.scope, self.target = params, direction, scope, target

    def derive(self, p, overrides):
        """Parameters computed from others (after the draws)."""

    def rules(self, p):
        """nftables rules applied before the workload starts (or at the onset)."""
        return ""

    def tc(self, p):
        return []

    def delays(self, p):
        """Base one-way delays the delay line adds per server address (ms)."""
        return {MSG_ADDR: p["rtt_ms"], MSG2_ADDR: p["rtt_ms"], CTL_ADDR: p["ctl_rtt_ms"],
                DOM_ADDR: 10, CROSS_ADDR: p["ctl_rtt_ms"], MSG_PEER_ADDR: p["rtt_ms"],
                CTL_PEER_ADDR: p["ctl_rtt_ms"]}

    def server_args(self, p):
        return ["--hello-ms", str(p["hello_ms"])] if p["hello_ms"] else []

    def helpers(self, p):
        """Userspace parts of the middlebox (argv of traffic.py), run in the router namespace."""
        return []

    def onset_s(self, p):
        return None

    def subject(self, spec, p):
        """Whether the middlebox acts on this flow (whether that visibly hurts it depends on
        the flow's demand)."""
        return spec["service"] == "messenger" and spec["kind"] != "dns"

    def impaired(self, spec, p, selected):
        """Whether the middlebox acted on this flow, given the client ports the kernel put in
        the `selection` set (None without one)."""
        return self.subject(spec, p)

    def disturbed(self, spec, p):
        """Whether a confounder touches this flow (it is not an impairment of the service)."""
        return False

    def impairment(self, p):
        return {}


class Clean(Scenario):
    def subject(self, spec, p):
        return False


def bucket(p):
    """The policer's token bucket as the kernel builds it: nft's byte limit holds one second
    at the rate plus the burst (nft_limit.c: tokens_max = unit * (rate + burst) / rate)."""
    rate_bytes = p["rate_kbit"] * 1000 // 8
    burst = int(p["burst_kb"] * 1024)
    return {"rate_bps": p["rate_kbit"] * 1000, "burst_bytes": burst, "bucket_bytes": rate_bytes + burst}


class Police(Scenario):
    def rules(self, p):
        return police_rules(p["rate_kbit"], p["burst_kb"])

    def impairment(self, p):
        return bucket(p)


class Shape(Scenario):
    def tc(self, p):
        return htb(p["rate_kbit"], p["queue_packets"], MSG_ADDR)

    def impairment(self, p):
        return {"rate_bps": p["rate_kbit"] * 1000, "queue_packets": p["queue_packets"]}


class RstHandshake(Scenario):
    def rules(self, p):
        # The ClientHello: a TLS handshake record (0x16) holding a client_hello (type 1).
        return chain('ip daddr %s tcp dport 443 @ih,0,8 0x16 @ih,40,8 0x01 counter reject with tcp reset '
                     'comment "reset at ClientHello"' % MSG_ADDR)

    def subject(self, spec, p):
        return spec["service"] == "messenger" and spec["kind"] == "tls"


class RstMidflow(Scenario):
    def rules(self, p):
        return chain('ip daddr %s tcp dport 443 ct reply bytes > %d counter reject with tcp reset '
                     'comment "reset after N bytes"' % (MSG_ADDR, p["after_bytes"]))

    def subject(self, spec, p):
        return (spec["service"] == "messenger" and spec["kind"] == "tls"
                and reply_bytes_estimate(spec) > p["after_bytes"])

    def impairment(self, p):
        return {"threshold_bytes": p["after_bytes"]}


class Freeze(Scenario):
    def rules(self, p):
        return chain('ip saddr %s tcp sport 443 ct reply bytes > %d counter drop '
                     'comment "freeze after N bytes"' % (MSG_ADDR, p["after_bytes"]))

    def subject(self, spec, p):
        return (spec["service"] == "messenger" and spec["kind"] == "tls"
                and reply_bytes_estimate(spec) > p["after_bytes"])

    def impairment(self, p):
        return {"threshold_bytes": p["after_bytes"]}


class Blackhole(Scenario):
    # What the middlebox does with what it blocks (`reject`): drops it, or answers it for the
    # server, as firewalls that reject do: an ICMP administratively-prohibited error for both
    # protocols (`icmp`), or a TCP RST for a SYN and ICMP port unreachable for UDP (`reset`).
    VERDICTS = {"drop": ("drop", "drop"),
                "icmp": ("reject with icmp type admin-prohibited",) * 2,
                "reset": ("reject with tcp reset", "reject with icmp type port-unreachable")}

    def rules(self, p):
        tcp, udp = self.VERDICTS[p["reject"]]
        body = []
        if p["proto"] in ("both", "tcp"):
            body.append('ip daddr %s tcp flags & (syn | ack) == syn counter %s comment "block SYN"'
                        % (MSG_ADDR, tcp))
        if p["proto"] in ("both", "udp"):
            body.append('ip daddr %s udp dport 3478 counter %s comment "block STUN/RTP"'
                        % (MSG_ADDR, udp))
        return chain("\n    ".join(body))

    def subject(self, spec, p):
        return (spec["service"] == "messenger" and spec["kind"] != "dns"
                and p["proto"] in ("both", spec["proto"]))


class CallPolice(Scenario):
    def rules(self, p):
        return police_rules(p["rate_kbit"], p["burst_kb"], protos="udp")

    def subject(self, spec, p):
        return spec["service"] == "messenger" and spec["kind"] == "call"

    def impairment(self, p):
        return bucket(p)


def call_far_end(p):
    """Where the messenger's call media comes from: its relay, or with `p2p` its peer."""
    return (MSG_PEER_ADDR, PEER_PORT) if p["p2p"] else (MSG_ADDR, 3478)


class CallLoss(Scenario):
    def rules(self, p):
        return chain('ip saddr %s udp sport %d numgen random mod 1000 < %d counter drop '
                     'comment "random loss"' % (call_far_end(p) + (round(p["loss_pct"] * 10),)))

    def subject(self, spec, p):
        return spec["service"] == "messenger" and spec["kind"] == "call"

    def impairment(self, p):
        return {"loss_ratio": p["loss_pct"] / 100}


class OnewayCut(Scenario):
    def onset_s(self, p):
        return p["after_s"]

    def rules(self, p):
        return chain('ip saddr %s udp sport %d counter drop comment "cut the media towards the client"'
                     % call_far_end(p))

    def subject(self, spec, p):
        return spec["service"] == "messenger" and spec["kind"] == "call"


class DelayedThrottle(Police):
    def onset_s(self, p):
        return p["after_s"]


# ---------------------------------------------------------------- behaviours reported 2021-2026
# (issue 9; ../shared/research/realworld.md). Client-to-server rules match on the router's LAN
# side (`iifname lan0`) so that a packet passing the delay line is judged once; the delay
# line's re-injected packets are not tracked again (Lab.delay), so conntrack counts each
# packet once.

UP = 'iifname "%s"' % LAN_IF
DOWN = 'oifname "%s"' % LAN_IF
# A client's TLS ClientHello: a handshake record (0x16) holding a client_hello (type 1).
CLIENT_HELLO = "@ih,0,8 0x16 @ih,40,8 0x01"
# A TCP segment with payload (at most 60 bytes of IP and TCP headers).
TCP_DATA = "ip length > 80"
FLOW_SET = ("  set %s { type ipv4_addr . inet_service; flags dynamic,timeout; timeout 10m; "
            "size 65536; }")


def sni_offset():
    """Offset of the server name in the payload of the workload's ClientHello."""
    probe = "x" * 24 + ".test"
    return traffic.client_hello(probe, random.Random(0)).index(probe.encode())


def messenger_snis():
    """Every server name the workload puts in a ClientHello to the messenger."""
    dom = SERVICES["messenger"]["domain"]
    return sorted(prefix + "." + dom for prefix in ("media", "upload", "video", "static", "quic"))


def sni_rule(name, action):
    """`action` on a ClientHello to the messenger whose SNI is `name`: its length and last 16
    bytes (nft compares at most 128 bits at once) at the name's offset, as a DPI lookup would."""
    at, tail = sni_offset(), name.encode()[-16:]
    return '%s ip daddr %s tcp dport 443 %s @ih,%d,16 %d @ih,%d,%d 0x%s %s' % (
        UP, MSG_ADDR, CLIENT_HELLO, (at - 2) * 8, len(name), (at + len(name) - len(tail)) * 8,
        8 * len(tail), tail.hex(), action)


def limit(rate_kbit, burst_kb):
    return "limit rate over %d bytes/second burst %d bytes" % (rate_kbit * 1000 // 8, int(burst_kb * 1024))


def flows_table(sets, body):
    return "\n".join(FLOW_SET % name for name in sets) + chain("\n    ".join(body))


def htb(rate_kbit, queue_packets, match=None):
    """An htb class at `rate_kbit` with a pfifo of `queue_packets` on the router's LAN (down)
    and WAN (up) egress, for the packets of address `match` (None: everything)."""
    rate = "%dkbit" % rate_kbit
    cmds = []
    for dev, side in ((LAN_IF, "src"), (WAN_IF, "dst")):
        cmds += [
            ["tc", "qdisc", "replace", "dev", dev, "root", "handle", "1:", "htb", "default",
             "10" if match else "20"],
            ["tc", "class", "add", "dev", dev, "parent", "1:", "classid", "1:10", "htb", "rate", "10gbit"],
            ["tc", "class", "add", "dev", dev, "parent", "1:", "classid", "1:20", "htb", "rate", rate,
             "ceil", rate, "quantum", "1514"],
            ["tc", "qdisc", "add", "dev", dev, "parent", "1:20", "handle", "20:", "pfifo", "limit",
             str(queue_packets)],
        ]
        if match:
            cmds.append(["tc", "filter", "add", "dev", dev, "protocol", "ip", "parent", "1:", "prio", "1",
                         "u32", "match", "ip", side, match + "/32", "flowid", "1:20"])
    return cmds


def is_tls(spec, service="messenger"):
    return spec["service"] == service and spec["kind"] == "tls"


class SniPolice(Scenario):
    trigger = "ClientHello with a messenger SNI"
    selection = "sni_flows"

    def rules(self, p):
        meter = "  set meter_%s { type ipv4_addr . inet_service; flags dynamic,timeout; timeout 60s; size 65536; }"
        lim = limit(p["rate_kbit"], p["burst_kb"])
        # One rule per name length (names of one length share their last 16 bytes here).
        names = {len(n): n for n in messenger_snis()}
        body = [sni_rule(n, 'add @sni_flows { ip saddr . tcp sport } counter comment "SNI match (%d bytes)"'
                         % len(n)) for _, n in sorted(names.items())]
        body += [
            '%s ip saddr . tcp sport @sni_flows add @meter_up { ip saddr . tcp sport %s } counter drop '
            'comment "police up"' % (UP, lim),
            '%s ip daddr . tcp dport @sni_flows add @meter_down { ip daddr . tcp dport %s } counter drop '
            'comment "police down"' % (DOWN, lim),
        ]
        return "\n".join([meter % "up", meter % "down"]) + "\n" + flows_table(["sni_flows"], body)

    def subject(self, spec, p):
        return is_tls(spec)

    def impaired(self, spec, p, selected):
        return is_tls(spec) and spec["port"] in selected

    def impairment(self, p):
        return dict(bucket(p), buckets="one per connection and direction")


class AggregatePolice(Scenario):
    def rules(self, p):
        lim = limit(p["rate_kbit"], p["burst_kb"])
        net = MSG_ADDR.rsplit(".", 1)[0] + ".0/24"
        return chain("\n    ".join([
            '%s ip saddr %s %s counter drop comment "aggregate police down"' % (DOWN, net, lim),
            '%s ip daddr %s %s counter drop comment "aggregate police up"' % (UP, net, lim)]))

    def impairment(self, p):
        return dict(bucket(p), buckets="one per direction for all the messenger's flows",
                    aggregate_rate_bps=p["rate_kbit"] * 1000)


class RandomLoss(Scenario):
    """Random drops of a share of packets (numgen), no rate limit."""

    def match(self, p):
        return "ip daddr %s" % MSG_ADDR, "ip saddr %s" % MSG_ADDR

    def rules(self, p):
        up, down = self.match(p)
        share = round(p["loss_pct"] * 100)
        body = []
        if p["direction"] in ("both", "down"):
            body.append('%s %s numgen random mod 10000 < %d counter drop comment "loss down"' % (DOWN, down, share))
        if p["direction"] in ("both", "up"):
            body.append('%s %s numgen random mod 10000 < %d counter drop comment "loss up"' % (UP, up, share))
        return chain("\n    ".join(body))

    def impairment(self, p):
        return {"loss_ratio": p["loss_pct"] / 100, "loss_direction": p["direction"]}


class CallPartialLoss(RandomLoss):
    def match(self, p):
        return "ip daddr %s udp dport %d" % call_far_end(p), "ip saddr %s udp sport %d" % call_far_end(p)

    def subject(self, spec, p):
        return spec["service"] == "messenger" and spec["kind"] == "call"


class WifiLoss(RandomLoss):
    confounder = True

    def match(self, p):
        return "meta l4proto { tcp, udp }", "meta l4proto { tcp, udp }"

    def subject(self, spec, p):
        return False

    def disturbed(self, spec, p):
        return True


class FreezeSome(Scenario):
    trigger = "conntrack reply bytes, on connections chosen at random when they open"
    selection = "frozen"

    def rules(self, p):
        # (numgen's values run 0-99: at 100 % every connection is chosen, with no draw.)
        draw = "numgen random mod 100 < %d " % p["share_pct"] if p["share_pct"] < 100 else ""
        return flows_table(["frozen"], [
            '%s ip daddr %s tcp dport 443 tcp flags & (syn | ack) == syn %s'
            'add @frozen { ip saddr . tcp sport } counter comment "choose the connection"'
            % (UP, MSG_ADDR, draw),
            '%s ip saddr %s tcp sport 443 ip daddr . tcp dport @frozen ct reply bytes > %d counter drop '
            'comment "freeze after N bytes"' % (DOWN, MSG_ADDR, p["after_bytes"])])

    def subject(self, spec, p):
        return is_tls(spec) and reply_bytes_estimate(spec) > p["after_bytes"]

    def impaired(self, spec, p, selected):
        return self.subject(spec, p) and spec["port"] in selected

    def impairment(self, p):
        return {"threshold_bytes": p["after_bytes"], "share_of_connections": p["share_pct"] / 100}


class PostHandshakeStall(Scenario):
    trigger = "the client's first data after its ClientHello"
    selection = "stalled"

    def rules(self, p):
        return flows_table(["stalled"], [
            '%s ip daddr %s tcp dport 443 %s @ih,0,8 != 0x16 add @stalled { ip saddr . tcp sport } '
            'counter comment "first application data"' % (UP, MSG_ADDR, TCP_DATA),
            '%s ip daddr %s ip saddr . tcp sport @stalled counter drop '
            'comment "drop every client packet from then on"' % (UP, MSG_ADDR)])

    def subject(self, spec, p):
        return is_tls(spec)


class ServerHelloDrop(Scenario):
    trigger = "the server's first data (ServerHello)"
    selection = "stalled"

    def rules(self, p):
        return flows_table(["stalled"], [
            '%s ip saddr %s tcp sport 443 %s @ih,0,8 0x16 add @stalled { ip daddr . tcp dport } '
            'counter comment "ServerHello"' % (DOWN, MSG_ADDR, TCP_DATA),
            '%s ip saddr %s ip daddr . tcp dport @stalled counter drop '
            'comment "drop it and every server packet from then on"' % (DOWN, MSG_ADDR)])

    def subject(self, spec, p):
        return is_tls(spec)


class PacketsThenDrop(Scenario):
    trigger = "conntrack packets (both directions)"

    def rules(self, p):
        return chain("\n    ".join([
            '%s ip daddr %s tcp dport 443 ct packets > %d counter drop comment "up after N packets"'
            % (UP, MSG_ADDR, p["packets"]),
            '%s ip saddr %s tcp sport 443 ct packets > %d counter drop comment "down after N packets"'
            % (DOWN, MSG_ADDR, p["packets"])]))

    def subject(self, spec, p):
        return is_tls(spec)

    def impairment(self, p):
        return {"threshold_packets": p["packets"]}


class RstReplace(Scenario):
    trigger = "ClientHello"
    selection = "hello"

    def rules(self, p):
        return flows_table(["hello"], [
            '%s ip daddr %s tcp dport 443 %s add @hello { ip saddr . tcp sport } counter '
            'comment "ClientHello seen"' % (UP, MSG_ADDR, CLIENT_HELLO),
            '%s ip saddr %s tcp sport 443 ip daddr . tcp dport @hello counter drop '
            'comment "server packet dropped (an RST/ACK goes instead)"' % (DOWN, MSG_ADDR)])

    def helpers(self, p):
        return [["inject-rst", LAN_IF, WAN_IF, MSG_ADDR, str(p["rst_ttl"])]]

    def subject(self, spec, p):
        return is_tls(spec)

    def impairment(self, p):
        return {"injected_ttl": p["rst_ttl"],
                "injection": "an RST/ACK to the client for every server packet after the ClientHello"}


class QuicBlock(Scenario):
    trigger = "QUIC v1 long-header packet with >= 1001 bytes of UDP payload"
    selection = "quic"

    def rules(self, p):
        return flows_table(["quic"], [
            '%s ip daddr %s udp dport 443 udp length > 1008 @ih,0,2 3 @ih,8,32 1 '
            'add @quic { ip saddr . udp sport } counter comment "QUIC Initial"' % (UP, MSG_ADDR),
            '%s ip daddr %s ip saddr . udp sport @quic counter drop comment "drop the flow up"' % (UP, MSG_ADDR),
            '%s ip saddr %s ip daddr . udp dport @quic counter drop comment "drop the flow down"'
            % (DOWN, MSG_ADDR)])

    def subject(self, spec, p):
        return spec["service"] == "messenger" and spec["kind"] == "quic"


class StunBlock(Scenario):
    def rules(self, p):
        ports = "{ 596-599, 1400, 3478 }"
        return chain("\n    ".join([
            '%s ip daddr %s udp dport %s @ih,0,16 0x0001 @ih,32,32 0x2112a442 counter drop '
            'comment "STUN Binding request"' % (UP, MSG_ADDR, ports),
            '%s ip daddr %s udp dport %s udp length 48 counter drop comment "40-byte probe"'
            % (UP, MSG_ADDR, ports)]))

    def subject(self, spec, p):
        return spec["service"] == "messenger" and spec["kind"] in ("call", "probe")


class MediaDie(Scenario):
    trigger = "conntrack reply packets"

    def rules(self, p):
        return chain('%s ip saddr %s udp sport %d ct reply packets > %d counter drop '
                     'comment "inbound media after K packets"' % ((DOWN,) + call_far_end(p) + (p["packets"],)))

    def subject(self, spec, p):
        return spec["service"] == "messenger" and spec["kind"] == "call"

    def impairment(self, p):
        return {"threshold_packets": p["packets"]}


class AddrShaping(Scenario):
    def delays(self, p):
        return dict(super().delays(p), **{MSG2_ADDR: p["slow_rtt_ms"]})

    def tc(self, p):
        return htb(p["rate_kbit"], p["queue_packets"], MSG2_ADDR)

    def subject(self, spec, p):
        return spec["server"] == MSG2_ADDR

    def impairment(self, p):
        return {"rate_bps": p["rate_kbit"] * 1000, "queue_packets": p["queue_packets"],
                "slow_addresses": [MSG2_ADDR], "fast_addresses": [MSG_ADDR],
                "base_rtt_ms": {MSG2_ADDR: p["slow_rtt_ms"], MSG_ADDR: p["rtt_ms"]}}


class Allowlist(Scenario):
    def rules(self, p):
        return "  set allowed { type ipv4_addr; elements = { %s, %s } }" % (DNS_ADDR, DOM_ADDR) + chain(
            "\n    ".join([
                '%s meta l4proto tcp ip daddr != @allowed %s counter drop '
                'comment "foreign: client data dropped (ClientHello never acknowledged)"' % (UP, TCP_DATA),
                '%s meta l4proto udp ip daddr != @allowed counter drop comment "foreign: UDP dropped"' % UP]))

    def subject(self, spec, p):
        return spec["service"] in SERVICES and spec["kind"] != "dns"

    def impairment(self, p):
        return {"allowlisted": [DNS_ADDR, DOM_ADDR]}


class Congestion(Scenario):
    confounder = True

    def tc(self, p):
        return htb(p["rate_kbit"], p["queue_packets"])

    def subject(self, spec, p):
        return False

    def disturbed(self, spec, p):
        return True

    def impairment(self, p):
        return {"bottleneck_bps": p["rate_kbit"] * 1000, "queue_packets": p["queue_packets"]}


class CtlDistance(Scenario):
    confounder = True

    def derive(self, p, overrides):
        if "ctl_rtt_ms" not in overrides:
            factor = 5 if p["ctl_side"] == "farther" else 0.2
            p["ctl_rtt_ms"] = max(1, round(p["rtt_ms"] * factor))

    def subject(self, spec, p):
        return False

    def disturbed(self, spec, p):
        """The farther server's flows (a paced stream may miss its deadline there)."""
        farther = "control" if p["ctl_rtt_ms"] > p["rtt_ms"] else "messenger"
        return spec["service"] == farther and spec["kind"] != "dns"


class SlowServer(Scenario):
    confounder = True

    def server_args(self, p):
        return super().server_args(p) + ["--slow", "%s=%d:%d" % (MSG_ADDR, p["server_kbit"], p["think_ms"])]

    def subject(self, spec, p):
        return False

    def disturbed(self, spec, p):
        return spec["service"] == "messenger" and spec["kind"] in ("tls", "chat")

    def impairment(self, p):
        return {"server_rate_bps": p["server_kbit"] * 1000, "think_ms": p["think_ms"]}


class CrossTraffic(Congestion):
    def impairment(self, p):
        return dict(super().impairment(p), cross_download_bytes=p["cross_kb"] * 1000)


SCENARIOS = {s.name: s for s in [
    Clean("clean", "none", "no impairment: base round trips only", {}, None, None, None),
    Police("police", "policing",
           "per-flow token-bucket policer (nft limit ... drop) on all messenger traffic, both directions",
           {"rate_kbit": 1500, "burst_kb": 16}, "both", "per_flow", "messenger tcp+udp"),
    Shape("shape", "shaping",
          "htb shaper for the messenger address on the router's LAN (down) and WAN (up) egress, "
          "with a pfifo queue", {"rate_kbit": 1000, "queue_packets": 60}, "both", "aggregate",
          "messenger tcp+udp"),
    RstHandshake("rst-handshake", "rst_injection",
                 "RST injected to the client when it sends a TLS ClientHello to the messenger "
                 "(the ClientHello is dropped)", {}, "down", "per_flow", "messenger tcp/443"),
    RstMidflow("rst-midflow", "rst_injection",
               "RST injected to the client once the messenger has sent more than after_bytes "
               "(conntrack reply bytes) on a connection", {"after_bytes": 40000}, "down", "per_flow",
               "messenger tcp/443"),
    Freeze("freeze", "freeze",
           "every packet from the messenger is dropped once a connection has carried more than "
           "after_bytes downstream (conntrack reply bytes); no RST", {"after_bytes": 16384}, "down",
           "per_flow", "messenger tcp/443"),
    Blackhole("blackhole", "blackhole",
              "SYNs and/or UDP to the messenger blocked: dropped (connections and STUN never "
              "answered), or with reject=icmp|reset refused in the server's place",
              {"proto": "both", "reject": "drop"}, "up", "per_flow", "messenger tcp (SYN) and udp/3478"),
    CallPolice("call-police", "call_policing",
               "per-flow policer on the messenger's calls (UDP), both directions: media loss",
               {"rate_kbit": 256, "burst_kb": 8}, "both", "per_flow", "messenger udp/3478"),
    CallLoss("call-loss", "call_loss", "random loss on the messenger's call media towards the client",
             {"loss_pct": 15}, "down", "per_flow", "messenger udp/3478"),
    OnewayCut("oneway-cut", "oneway_cut",
              "after after_s seconds the messenger's call media towards the client is dropped; "
              "the client keeps sending", {"after_s": 8}, "down", "per_flow", "messenger udp/3478"),
    DelayedThrottle("delayed-throttle", "delayed_policing",
                    "full speed first; after after_s seconds a per-flow policer on all messenger "
                    "traffic", {"after_s": 8, "rate_kbit": 256, "burst_kb": 16}, "both", "per_flow",
                    "messenger tcp+udp"),
    # Behaviours reported 2021-2026 (issue 9): parameters in (least, greatest) or a tuple of
    # words are drawn per run from the seed.
    SniPolice("sni-police", "policing",
              "a ClientHello whose SNI names the messenger puts its connection under a per-flow "
              "policer, separate buckets up and down (Russia 2021)",
              {"rate_kbit": (130, 150), "burst_kb": (4, 16)}, "both", "per_flow", "messenger tcp/443"),
    AggregatePolice("aggregate-police", "policing",
                    "one token bucket per direction for all the messenger's traffic (its /24): "
                    "the flows share the rate", {"rate_kbit": (300, 1000), "burst_kb": (8, 32)}, "both",
                    "aggregate", "messenger tcp+udp"),
    RandomLoss("random-loss", "random_loss",
               "a share of all the messenger's packets (tcp and udp) dropped at random, no rate "
               "limit, RTT flat", {"loss_pct": (2.0, 10.0), "direction": ("both", "down", "up")}, "both",
               "per_flow", "messenger tcp+udp"),
    FreezeSome("freeze-some", "freeze",
               "on a random share of the messenger's connections, every server packet is dropped "
               "once the connection carried more than after_bytes downstream; no RST",
               {"after_bytes": (12000, 64000), "share_pct": (30, 70)}, "down", "per_flow",
               "messenger tcp/443 (some connections)"),
    PostHandshakeStall("handshake-stall", "stall",
                       "TCP and TLS handshakes complete; the client's first application data and "
                       "every later client packet are dropped (no ACK, no RST)", {}, "up", "per_flow",
                       "messenger tcp/443"),
    ServerHelloDrop("serverhello-drop", "stall",
                    "the ServerHello and every later server packet of the connection are dropped "
                    "(a server that pauses hello_ms first has its bare ACK of the ClientHello pass)",
                    {"hello_ms": (0, 200)}, "down", "per_flow", "messenger tcp/443"),
    PacketsThenDrop("packets-then-drop", "drop",
                    "the first N packets of a connection (both directions) pass, then everything is "
                    "dropped both ways", {"packets": (5, 8)}, "both", "per_flow", "messenger tcp/443"),
    RstReplace("rst-replace", "rst_injection",
               "after a ClientHello every server packet is dropped and an RST/ACK with its "
               "sequence numbers sent to the client instead (~1 RTT after the ClientHello, again "
               "for each retransmission)", {"rst_ttl": (40, 56)}, "down", "per_flow", "messenger tcp/443"),
    QuicBlock("quic-block", "drop",
              "QUIC v1 Initials of >= 1001 bytes to the messenger are dropped with the rest of "
              "their flow", {"quic_kb": 200}, "both", "per_flow", "messenger udp/443"),
    StunBlock("stun-block", "drop",
              "STUN Binding requests and 40-byte probes to the messenger's relay ports (UDP "
              "596-599, 1400, 3478) dropped: never answered", {"probes": 1}, "up", "per_flow",
              "messenger udp 596-599, 1400, 3478"),
    MediaDie("media-die", "oneway_cut",
             "the call's packets towards the client dropped after the first K (conntrack reply "
             "packets)", {"packets": (4, 6)}, "down", "per_flow", "messenger udp/3478"),
    CallPartialLoss("call-partial-loss", "call_loss",
                    "random loss on the messenger's calls in one or both directions",
                    {"loss_pct": (5.0, 30.0), "direction": ("down", "up", "both")}, "both", "per_flow",
                    "messenger udp/3478"),
    # Peer-to-peer calls (issue 10): the call asks the messenger's relay for its address by
    # STUN, then exchanges media with a peer that is no address of the messenger's.
    MediaDie("p2p-media-die", "oneway_cut",
             "a peer-to-peer call (after STUN with the relay): its packets from the peer towards "
             "the client dropped after the first K", {"p2p": 1, "packets": (4, 6)}, "down",
             "per_flow", "messenger call peer udp/%d" % PEER_PORT),
    CallPartialLoss("p2p-call-loss", "call_loss",
                    "random loss on a peer-to-peer call (after STUN with the relay) in one or "
                    "both directions", {"p2p": 1, "loss_pct": (5.0, 30.0), "direction": ("down", "both")},
                    "both", "per_flow", "messenger call peer udp/%d" % PEER_PORT),
    AddrShaping("addr-shaping", "shaping",
                "the messenger's second address sits behind a shaper (a base RTT of slow_rtt_ms "
                "and an htb rate cap); its first address is fast",
                {"msg_addrs": 2, "rtt_ms": 50, "slow_rtt_ms": (300, 450), "rate_kbit": (500, 2000),
                 "queue_packets": (20, 60)}, "both", "per_address", "messenger second address"),
    Allowlist("allowlist", "allowlist",
              "only allowlisted (domestic) addresses work: to every other address TCP handshakes "
              "complete but client data is dropped, UDP is dropped", {"domestic": 1}, "up",
              "all_foreign", "every foreign address (messenger and control)"),
    # Confounders: no finding is right.
    Congestion("congestion", "none",
               "confounder: one bottleneck (htb + pfifo) shared by all traffic",
               {"rate_kbit": (5000, 10000), "queue_packets": (30, 100)}, "both", "everything",
               "all traffic"),
    WifiLoss("wifi-loss", "none", "confounder: random loss on every packet, both directions",
             {"loss_pct": (1.0, 2.0), "direction": "both"}, "both", "everything", "all traffic"),
    CtlDistance("ctl-distance", "none",
                "confounder: the control server 5x nearer or farther than the messenger",
                {"rtt_ms": (20, 80), "ctl_side": ("nearer", "farther")}, None, None, None),
    SlowServer("slow-server", "none",
               "confounder: the messenger's server application is slow (paced sends at "
               "server_kbit, think_ms before each answer)",
               {"server_kbit": (500, 3000), "think_ms": (100, 500)}, "down", "messenger", "messenger tcp"),
    CrossTraffic("cross-traffic", "none",
                 "confounder: bursts of downloads from another server through one shared bottleneck",
                 {"cross_kb": (300, 1500), "rate_kbit": (6000, 15000), "queue_packets": (50, 100)},
                 "both", "everything", "all traffic"),
]}

# The committed fixtures (samples/lab/): name, scenario, parameters. Smaller volumes than the
# defaults (audio-only calls, 10 s, 96-byte snap length) keep them at a few MB in all; the
# scenarios that need a longer demand above the rate get larger downloads.
FIXTURES = [
    ("clean", "clean", {}),
    ("police-128k", "police", {"rate_kbit": 128}),
    ("police-1500k", "police", {"rate_kbit": 1500, "download_kb": 800}),
    ("shape-1m", "shape", {"rate_kbit": 1000, "download_kb": 600}),
    ("rst-handshake", "rst-handshake", {}),
    ("rst-midflow", "rst-midflow", {"after_bytes": 40000}),
    ("freeze-16k", "freeze", {"after_bytes": 16384}),
    ("freeze-28k", "freeze", {"after_bytes": 28000}),
    ("blackhole", "blackhole", {}),
    ("call-police", "call-police", {"rate_kbit": 32}),
    ("call-loss", "call-loss", {"loss_pct": 15}),
    ("oneway-cut", "oneway-cut", {"after_s": 5}),
    ("delayed-throttle", "delayed-throttle", {"after_s": 5, "rate_kbit": 256}),
]
FIXTURE_SETTINGS = {"download_kb": 200, "upload_kb": 100, "stream_kbit": 400, "video_kbit": 0,
                    "fetch_every_s": 2.5, "duration": 10, "snaplen": 96}


# Allowed values of every numeric parameter: (least, greatest). Per-run draws of the newer
# scenarios stay inside these (their ranges are in SCENARIOS and `lab.py list`).
RANGES = {
    "rtt_ms": (0, 1000), "ctl_rtt_ms": (0, 1000), "download_kb": (1, 10_000_000),
    "upload_kb": (1, 10_000_000), "stream_kbit": (8, 1_000_000), "video_kbit": (0, 10_000),
    "fetch_every_s": (0.05, 60), "rate_kbit": (8, 10_000_000), "burst_kb": (1, 100_000),
    "queue_packets": (2, 10_000), "after_bytes": (100, 100_000_000), "loss_pct": (0, 100),
    "after_s": (1, 600), "flow_max_s": (1, 600), "quic_kb": (0, 1_000_000), "probes": (0, 1),
    "msg_addrs": (1, 2), "domestic": (0, 1), "p2p": (0, 1), "cross_kb": (0, 1_000_000), "share_pct": (0, 100),
    "packets": (1, 1000), "rst_ttl": (1, 255), "slow_rtt_ms": (0, 1000), "server_kbit": (8, 1_000_000),
    "think_ms": (0, 10_000), "tcp_timestamps": (0, 1), "hello_ms": (0, 10_000),
    "mtu": (1280, 1500),
}
# Allowed values of every word parameter.
CHOICES = {"proto": ("both", "tcp", "udp"), "direction": ("both", "down", "up"),
           "ctl_side": ("nearer", "farther"), "call_framing": ("rtp", "opaque"),
           "cc": ("cubic", "bbr", "reno"), "capture": ("lan", "wan"),
           "reject": ("drop", "icmp", "reset")}


def parse_value(key, text, default):
    """A parameter value from `--set KEY=VALUE` (or a number given directly), checked."""
    if key in CHOICES:
        if text not in CHOICES[key]:
            raise UsageError("--set %s=%s: allowed values are %s" % (key, text, ", ".join(CHOICES[key])))
        return text
    if isinstance(default, tuple):
        default = default[0]
    kind = float if isinstance(default, float) else int
    try:
        value = kind(text)
    except ValueError:
        raise UsageError("--set %s=%s: expected %s" % (key, text, "a number" if kind is float else "an integer"))
    least, greatest = RANGES[key]
    if not least <= value <= greatest:
        raise UsageError("--set %s=%s: allowed range is %s..%s" % (key, text, least, greatest))
    return value


def draw(value, rng):
    """A parameter's value for one run: (least, greatest) drawn uniformly (integers or tenths),
    a tuple of words chosen, anything else as given."""
    if not isinstance(value, tuple):
        return value
    if isinstance(value[0], str):
        return rng.choice(value)
    if isinstance(value[0], float):
        return round(rng.uniform(*value), 1)
    return rng.randint(*value)


def resolve_params(name, overrides, duration, seed=1):
    """The scenario's parameters for a run (drawn from the seed where they are ranges) with the
    overrides applied; every problem named. Returns (params, names of the drawn ones)."""
    if name not in SCENARIOS:
        raise UsageError("no scenario %s (known: %s)" % (name, ", ".join(SCENARIOS)))
    scenario = SCENARIOS[name]
    p = dict(DEFAULTS, **scenario.params)
    for key, value in overrides.items():
        if key not in p:
            raise UsageError("--set %s: unknown parameter of scenario %s (known: %s)"
                           % (key, name, ", ".join(sorted(p))))
        p[key] = parse_value(key, value, p[key])
    # A generator per parameter: the workload's (random.Random(seed)) is left as it was, and
    # setting one parameter leaves the others' draws alone.
    drawn = sorted(k for k, v in p.items() if isinstance(v, tuple))
    for key in drawn:
        p[key] = draw(p[key], random.Random("%s/%d/%s" % (name, seed, key)))
    scenario.derive(p, overrides)
    if not (5 <= duration <= 600):
        raise UsageError("--duration %s: must be between 5 and 600 seconds" % duration)
    onset = scenario.onset_s(p)
    if onset is not None and not (1 <= onset <= duration - 3):
        raise UsageError("after_s=%s: the onset must fall between 1 s and %s s (the duration minus 3 s)"
                       % (onset, duration - 3))
    return p, drawn


# ---------------------------------------------------------------- the daemon on the router

class Daemon:
    """`throttlewatch run` in the router namespace on the interface the trace is taken on (its
    LAN interface, as on a real router, unless `capture=wan`), with its events, status file and
    metrics next to the trace (PREFIX.events.jsonl, PREFIX.status.json, PREFIX.metrics.txt
    fetched with curl, PREFIX.daemon.log)."""

    def __init__(self, lab, binary, prefix, window_s, interface, settings=None):
        self.lab, self.window_s = lab, window_s
        self.settings = {"interfaces": [interface], "control_sample": 1, "listen": "127.0.0.1:9737",
                         "services": os.path.join(ROOT, "samples", "lab-services.toml")}
        for key, value in (settings or {}).items():
            if key == "interfaces":
                # `--daemon-set interfaces=lan0,wan0`: the router's LAN and WAN (no NAT).
                self.settings[key] = value.split(",")
            else:
                self.settings[key] = int(value) if value.isdigit() else value
        self.files = {k: prefix + ext for k, ext in (
            ("config", ".daemon.toml"), ("events", ".events.jsonl"), ("status", ".status.json"),
            ("log", ".daemon.log"), ("metrics", ".metrics.txt"))}
        for key in ("events", "status", "metrics"):
            if os.path.exists(self.files[key]):
                os.remove(self.files[key])
        self.write_config()
        self.log = open(self.files["log"], "w")
        self.proc = lab.spawn(lab.router, [binary, "run", "--config", self.files["config"]],
                              stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.time() + 30
        while "metrics on" not in open(self.files["log"]).read():
            if self.proc.poll() is not None or time.time() > deadline:
                raise LabError("the daemon did not start: " + open(self.files["log"]).read().strip())
            time.sleep(0.1)
        self.started = time.time()

    def write_config(self, broken=False):
        settings = dict(self.settings, events=self.files["events"], status=self.files["status"])
        text = "[daemon]\n" + "".join("%s = %s\n" % (k, json.dumps(v)) for k, v in settings.items())
        text += "\n[detect]\nwindow_s = %d\n" % self.window_s
        if broken:
            text += "snaplen = \"not a number\"\n"
        with open(self.files["config"], "w") as f:
            f.write(text)

    def reload_check(self):
        """SIGHUP with a broken file keeps it running on the old one; a good file reloads."""
        log_text = lambda: open(self.files["log"]).read()
        self.write_config(broken=True)
        self.proc.send_signal(signal.SIGHUP)
        time.sleep(1.5)
        result = {"alive_after_broken": self.proc.poll() is None,
                  "failure_logged": "reload failed" in log_text()}
        self.write_config()
        self.proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        result["reloaded"] = "reloaded" in log_text()
        return result

    def finish(self, traffic_end):
        """Wait for the end of the window the traffic ended in, fetch /metrics with a real HTTP
        client, then SIGTERM: the daemon flushes its last window and exits."""
        elapsed = traffic_end - self.started
        stop_at = self.started + self.window_s * (int(elapsed // self.window_s) + 1) + 1.0
        time.sleep(max(0.0, stop_at - time.time()))
        fetch = subprocess.run(["ip", "netns", "exec", self.lab.router, "curl", "-sS", "--max-time",
                                "5", self.metrics_url()], capture_output=True, text=True)
        with open(self.files["metrics"], "w") as f:
            f.write(fetch.stdout)
        cpu_s = self.cpu_seconds()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = None
        self.log.close()
        return {"exit_code": code, "metrics_fetch_exit": fetch.returncode, "window_s": self.window_s,
                "started": self.started, "stopped": time.time(), "cpu_s": cpu_s}

    def metrics_url(self):
        """Where the daemon serves /metrics, inside the router namespace (`listen`)."""
        return "http://%s/metrics" % self.settings["listen"]

    def cpu_seconds(self):
        """User + system CPU time the daemon used so far (all its threads)."""
        try:
            fields = open("/proc/%d/stat" % self.proc.pid).read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return None


# ---------------------------------------------------------------- running a scenario

def nft_counters(lab):
    out = sh("nft", "-j", "list", "ruleset", ns=lab.router, check=False)
    rules = []
    try:
        for item in json.loads(out).get("nftables", []):
            rule = item.get("rule")
            if not rule:
                continue
            counter = next((e["counter"] for e in rule.get("expr", []) if "counter" in e), None)
            if counter:
                rules.append({"chain": rule.get("chain"), "comment": rule.get("comment"),
                              "packets": counter["packets"], "bytes": counter["bytes"]})
    except ValueError:
        pass
    return rules


def delay_line_dropped(lab):
    """Packets the delay line's device dropped because its queue was full (None: the run had
    no delay line)."""
    out = sh("ip", "-j", "-s", "link", "show", DELAY_IF, ns=lab.router, check=False)
    try:
        return json.loads(out)[0]["stats64"]["tx"]["dropped"]
    except (ValueError, IndexError, KeyError):
        return None


def selected_ports(lab, name):
    """Client ports in the nft set `name` (address . port elements): the connections the
    kernel chose or triggered on."""
    out = sh("nft", "-j", "list", "set", "inet", "lab", name, ns=lab.router, check=False)
    ports = set()
    def walk(node):
        if isinstance(node, dict):
            if "concat" in node and len(node["concat"]) == 2:
                ports.add(int(node["concat"][1]))
                return
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    try:
        for item in json.loads(out).get("nftables", []):
            walk(item.get("set", {}).get("elem", []))
    except ValueError:
        raise LabError("cannot read nft set %s: %r" % (name, out[:200]))
    return ports


def run_scenario(name, overrides, seed, duration, snaplen, prefix, quiet=False, daemon=None,
                 daemon_window_s=10, reload_check=False, daemon_settings=None, offloads=False):
    scenario = SCENARIOS[name]
    p, drawn = resolve_params(name, overrides, duration, seed)
    onset = scenario.onset_s(p)
    rng = random.Random(seed)
    specs = workload(p, duration, rng)
    pcap, truth_path = prefix + ".pcap", prefix + ".truth.json"
    os.makedirs(os.path.dirname(os.path.abspath(pcap)), exist_ok=True)
    log = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))

    with Lab(offloads) as lab:
        log("lab %s: scenario %s, seed %d, %s" % (lab.router[:-2], name, seed,
                                                  " ".join("%s=%s" % kv for kv in sorted(p.items()))))
        lab.delay(scenario.delays(p))
        if not p["tcp_timestamps"]:
            # Per namespace, and for IPv6 as well.
            sh("sysctl", "-qw", "net.ipv4.tcp_timestamps=0", ns=lab.client)
        if p["mtu"] != 1500:
            # Both ends then announce the MSS of the smaller MTU, as behind a PPPoE or a tunnel.
            for ns, dev in ((lab.client, "eth0"), (lab.router, LAN_IF), (lab.router, WAN_IF),
                            (lab.server, "eth0")):
                sh("ip", "link", "set", dev, "mtu", str(p["mtu"]), ns=ns)
        set_congestion_control(lab, p["cc"])
        ruleset = scenario.rules(p)
        table = "table inet lab {%s\n}\n" % ruleset if ruleset else ""
        if table and onset is None:
            sh("nft", "-f", "-", ns=lab.router, input=table)
        for cmd in scenario.tc(p):
            sh(*cmd, ns=lab.router)
        server = lab.spawn(lab.server, [sys.executable, TRAFFIC, "serve"] + scenario.server_args(p),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if server.stdout.readline().strip() != "serving":
            raise LabError("the lab servers did not start: " + server.stderr.read().strip())
        start_helpers(lab, scenario, p)
        capture_if = LAN_IF if p["capture"] == "lan" else WAN_IF
        capture = lab.spawn(lab.router, ["tcpdump", "-n", "-q", "-Z", "root", "-B", "16384", "-i", capture_if,
                                         "-s", str(snaplen), "-w", pcap],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # tcpdump says "listening on ..." once the capture is open.
        line = capture.stderr.readline()
        if "listening" not in line:
            raise LabError("tcpdump did not start: " + line + capture.stderr.read())
        running = (Daemon(lab, daemon, prefix, daemon_window_s, capture_if, daemon_settings)
                   if daemon else None)
        if running:
            # For tools that watch the daemon live (tests/prometheus.rs scrapes it from there).
            log("daemon metrics at %s in namespace %s" % (running.metrics_url(), lab.router))
        time.sleep(0.2)
        reload_result = [None]
        if running and reload_check:
            checker = threading.Thread(
                target=lambda: (time.sleep(duration / 2), reload_result.__setitem__(0, running.reload_check())))
            checker.start()
        client = lab.spawn(lab.client, [sys.executable, TRAFFIC, "client"], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        client.stdin.write(json.dumps(specs))
        client.stdin.close()
        client.stdin = None  # written and closed: communicate() below only reads
        # Time zero is the client's own: on a busy machine it may start seconds after it was
        # spawned, and an onset counted from the spawn could come before the traffic.
        first = client.stdout.readline().split()
        if first[:1] != ["started"]:
            client.wait()
            raise LabError("the lab client did not start: " + client.stderr.read().strip())
        started = float(first[1])
        onset_at = [None]
        if onset is not None:
            def apply():
                time.sleep(max(0.0, started + onset - time.time()))
                sh("nft", "-f", "-", ns=lab.router, input=table)
                onset_at[0] = time.time()
            applier = threading.Thread(target=apply)
            applier.start()
        out, err = client.communicate(timeout=duration + 60)
        if onset is not None:
            applier.join()
        if client.returncode != 0:
            raise LabError("the lab client failed (exit %d): %s" % (client.returncode, err.strip()))
        time.sleep(0.3)
        ended = time.time()
        counters = nft_counters(lab)
        lab_dropped = delay_line_dropped(lab)
        selected = selected_ports(lab, scenario.selection) if scenario.selection else None
        daemon_result = None
        if running:
            if reload_check:
                checker.join()
            daemon_result = running.finish(ended)
            daemon_result["reload_check"] = reload_result[0]
        # tcpdump reads the kernel's capture ring a block at a time (a block is handed over
        # within its 1-s timeout) and exits on SIGTERM without reading the open one: wait, so
        # the last packets (a client's FIN at its deadline) are in the file.
        time.sleep(max(0.0, ended + 2.0 - time.time()))
        capture.send_signal(signal.SIGTERM)
        _, cap_err = capture.communicate(timeout=10)
        m = re.search(r"(\d+) packets? dropped by kernel", cap_err)
        dropped = int(m.group(1)) if m else None
        m = re.search(r"(\d+) packets? captured", cap_err)
        captured = int(m.group(1)) if m else None

    flows = split_call_legs(json.loads(out))
    onset_time = onset_at[0]
    for f in flows:
        impaired = scenario.impaired(f, p, selected)
        if impaired and onset_time is not None:
            impaired = f["end"] is not None and f["end"] > onset_time
        f["impaired"] = impaired
        f["disturbed"] = scenario.disturbed(f, p)
        if selected is not None:
            f["selected"] = f["port"] in selected
        f["client"] = "%s:%s" % (CLIENT_ADDR, f.pop("port"))
        f["server"] = "%s:%s" % (f.pop("server"), f.pop("server_port"))
        f["goodput_bps"] = (round(f["received"] * 8 / (f["end"] - f["start"]))
                            if f["start"] and f["end"] and f["end"] > f["start"] else None)
        for k in ("seed",):
            f.pop(k, None)
    impairment = {"mechanism": scenario.mechanism, "description": scenario.doc,
                  "direction": scenario.direction, "scope": scenario.scope, "target": scenario.target,
                  "onset": onset_time, "trigger": scenario.trigger, "confounder": scenario.confounder,
                  "drawn_params": {k: p[k] for k in drawn}, "nft": table or None,
                  "tc": [" ".join(c) for c in scenario.tc(p)] or None,
                  "rule_counters": counters}
    impairment.update(scenario.impairment(p))
    impaired_dl = [f for f in flows if f["impaired"] and f["kind"] == "tls" and f.get("op") == "get"
                   and f["bytes"] >= 100_000 and f["goodput_bps"]]
    truth = {
        "schema": TRUTH_SCHEMA,
        "scenario": name,
        "seed": seed,
        "params": p,
        "offloads": offloads,
        "duration_s": duration,
        "started": started,
        "ended": ended,
        "topology": {"client": CLIENT_ADDR, "messenger": MSG_ADDR, "messenger2": MSG2_ADDR,
                     "control": CTL_ADDR, "dns": DNS_ADDR, "domestic": DOM_ADDR, "cross": CROSS_ADDR,
                     "capture": "router %s interface (%s), snap length %d, offloads %s"
                                % (p["capture"].upper(), capture_if, snaplen,
                                   "on" if offloads else "off")},
        "base_rtt_ms": {"messenger": p["rtt_ms"], "control": p["ctl_rtt_ms"]},
        "base_rtt_ms_by_address": scenario.delays(p),
        "capture": {"file": os.path.basename(pcap), "packets": captured, "dropped_by_kernel": dropped,
                    "delay_line_dropped": lab_dropped},
        "daemon": daemon_result,
        "impairment": impairment,
        "measured": {
            "impaired_download_goodput_bps": [f["goodput_bps"] for f in impaired_dl],
            "outcomes": {svc: count_outcomes(flows, svc) for svc in sorted({f["service"] for f in flows})},
        },
        "flows": flows,
    }
    with open(truth_path + ".tmp", "w") as fh:
        json.dump(truth, fh, indent=1, sort_keys=False)
        fh.write("\n")
    os.replace(truth_path + ".tmp", truth_path)
    log("wrote %s (%d packets, %s dropped) and %s" % (pcap, captured or 0, dropped, truth_path))
    return truth


def split_call_legs(flows):
    """A peer-to-peer call is two flows on one socket: its STUN with the relay (kind `stun`,
    leg `setup`) and the call with the peer (kind `call`, leg `p2p`)."""
    legs = []
    next_id = max((f["id"] for f in flows), default=-1) + 1
    for f in flows:
        legs.append(f)
        if not f.get("relay"):
            continue
        setup = dict(f, id=next_id, kind="stun", leg="setup", server=f.pop("relay"),
                     server_port=f.pop("relay_port"), outcome=f.pop("relay_outcome", "error"),
                     stun_requests=f.pop("relay_stun_requests"),
                     stun_answers=f.pop("relay_stun_answers"), sent=f.pop("relay_sent"),
                     received=f.pop("relay_received"), rtp_received=0)
        f["leg"] = "p2p"
        next_id += 1
        legs.append(setup)
    return legs


def count_outcomes(flows, svc):
    counts = {}
    for f in flows:
        if f["service"] == svc:
            counts[f["outcome"]] = counts.get(f["outcome"], 0) + 1
    return counts


def bench(out, megabytes):
    """The large performance trace (README, benches/compare.sh): clean scenario, four bulk
    downloads of megabytes/4 each, calls, chat and short fetches; snap length 128."""
    n = max(1, megabytes * 1000 // 4)
    return run_scenario("clean", {"download_kb": n, "rtt_ms": 0, "ctl_rtt_ms": 0, "fetch_every_s": 0.1},
                        seed=1, duration=30, snaplen=128, prefix=out[:-5] if out.endswith(".pcap") else out)


# ---------------------------------------------------------------- command line

def need_root_and_tools():
    if os.geteuid() != 0:
        raise UsageError("the lab needs root (network namespaces, nftables, tc, tcpdump)")
    missing = [t for t in ("ip", "nft", "tc", "tcpdump") if not shutil.which(t)]
    if missing:
        raise UsageError("missing tools: %s (Debian: apt-get install iproute2 nftables tcpdump)"
                       % ", ".join(missing))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="lab.py", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    ls = sub.add_parser("list", help="scenarios and their parameters")
    ls.add_argument("--fixtures", action="store_true", help="just the fixture names, one per line")
    run = sub.add_parser("run", help="run one scenario")
    run.add_argument("scenario", choices=sorted(SCENARIOS))
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="a scenario or workload parameter (see `list`)")
    run.add_argument("--seed", type=int, default=1)
    run.add_argument("--duration", type=float, default=20.0, help="seconds of traffic (default 20)")
    run.add_argument("--snaplen", type=int, default=256, help="capture snap length (default 256)")
    run.add_argument("--out", help="output prefix (default target/lab/SCENARIO-SEED)")
    run.add_argument("--quiet", action="store_true")
    run.add_argument("--offloads", choices=("on", "off"), default="off",
                     help="leave TSO/GSO/GRO on on the veths: the capture holds super-segments (default off)")
    fx = sub.add_parser("fixtures", help="re-record the committed fixture traces")
    fx.add_argument("--dir", default=os.path.join(ROOT, "samples", "lab"))
    fx.add_argument("--only", action="append", default=[], help="just this fixture (repeatable)")
    fx.add_argument("--seed", type=int, default=1)
    for p in (run, fx):
        p.add_argument("--daemon", metavar="BINARY",
                       help="also run BINARY (throttlewatch) as the router's daemon on its LAN side")
        p.add_argument("--daemon-window", type=int, default=10, metavar="S",
                       help="the daemon's evaluation window (default 10 s)")
        p.add_argument("--reload-check", action="store_true",
                       help="mid-run, SIGHUP the daemon with a broken, then a good configuration")
        p.add_argument("--daemon-set", action="append", default=[], metavar="KEY=VALUE",
                       help="a [daemon] key of the daemon's configuration (e.g. snaplen=96)")
    bn = sub.add_parser("bench", help="record the large performance trace")
    bn.add_argument("--out", default=os.path.join(ROOT, "target", "bench", "lab-bench.pcap"))
    bn.add_argument("--megabytes", type=int, default=800)
    sub.add_parser("clean", help="remove namespaces left behind by killed runs")
    args = ap.parse_args(argv)

    if args.cmd == "list" and args.fixtures:
        print("\n".join(name for name, _, _ in FIXTURES))
        return 0
    if args.cmd == "list":
        for s in SCENARIOS.values():
            print("%-17s %s" % (s.name, s.doc))
            for k, v in s.params.items():
                if isinstance(v, tuple) and isinstance(v[0], str):
                    v = "one of %s (drawn per run)" % ", ".join(v)
                elif isinstance(v, tuple):
                    v = "%s..%s (drawn per run)" % v
                print("%19s%s = %s" % ("", k, v))
        print("\nworkload parameters (every scenario):")
        for k, v in DEFAULTS.items():
            print("%19s%s = %s" % ("", k, v))
        return 0

    if args.cmd == "run":
        if not (64 <= args.snaplen <= 65535):
            raise UsageError("--snaplen %d: must be between 64 and 65535" % args.snaplen)
        overrides = {}
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep:
                raise UsageError("--set %s: expected KEY=VALUE" % item)
            overrides[key] = value
        resolve_params(args.scenario, overrides, args.duration, args.seed)  # bad input fails before setup
    daemon_settings = {}
    for item in getattr(args, "daemon_set", []):
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError("--daemon-set %s: expected KEY=VALUE" % item)
        daemon_settings[key] = value
    if args.cmd in ("run", "fixtures") and args.daemon and not os.access(args.daemon, os.X_OK):
        raise UsageError("--daemon %s: not an executable" % args.daemon)
    if args.cmd in ("run", "fixtures") and args.daemon and not shutil.which("curl"):
        raise UsageError("--daemon needs curl to fetch /metrics (apt-get install curl)")
    if args.cmd == "fixtures":
        unknown = set(args.only) - {name for name, _, _ in FIXTURES}
        if unknown:
            raise UsageError("--only %s: no such fixture (lab.py list --fixtures)" % ", ".join(sorted(unknown)))
    need_root_and_tools()
    # Signals end the run through the normal path, so the namespaces are removed.
    def stop(signum, frame):
        raise Interrupted(signum)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    # A shell starts background jobs with SIGINT ignored, and Python then leaves it ignored:
    # restore KeyboardInterrupt so that SIGINT stops a run however it was started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    clean_stale(verbose=args.cmd == "clean")
    if args.cmd == "clean":
        return 0
    if args.cmd == "run":
        prefix = args.out or os.path.join(ROOT, "target", "lab", "%s-%d" % (args.scenario, args.seed))
        run_scenario(args.scenario, overrides, args.seed, args.duration, args.snaplen, prefix, args.quiet,
                     args.daemon, args.daemon_window, args.reload_check, daemon_settings,
                     offloads=args.offloads == "on")
    elif args.cmd == "fixtures":
        settings = dict(FIXTURE_SETTINGS)
        duration, snaplen = settings.pop("duration"), settings.pop("snaplen")
        for fixture, scenario, params in FIXTURES:
            if args.only and fixture not in args.only:
                continue
            run_scenario(scenario, dict(settings, **params), args.seed, duration, snaplen,
                         os.path.join(args.dir, fixture), daemon=args.daemon,
                         daemon_window_s=args.daemon_window, reload_check=args.reload_check,
                         daemon_settings=daemon_settings)
    elif args.cmd == "bench":
        bench(args.out, args.megabytes)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LabError as e:
        print("lab: %s" % e, file=sys.stderr)
        sys.exit(e.status)
    except OSError as e:
        print("lab: %s" % e, file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("lab: interrupted (SIGINT); namespaces removed", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
    except Interrupted as e:
        print("lab: stopped by %s; namespaces removed" % signal.Signals(e.signum).name, file=sys.stderr)
        sys.exit(128 + e.signum)
