#!/usr/bin/env python3
"""Lab traffic: real sockets on real kernels, inside the lab's namespaces (lab/lab.py runs these;
standard library only).

    traffic.py serve [--slow ADDR=KBIT:MS] [--hello-ms MS]  # server namespace: every service below
    traffic.py inject-rst LAN WAN ADDR TTL  # router namespace: RST/ACKs for ADDR's packets
    traffic.py client < WORKLOAD.json     # client namespace: run the flows, print results as JSON
    traffic.py delay DEV ADDR=MS...       # router namespace: the delay line (no netem here)

Servers, on the messenger's two addresses and the control address (TLS-like and chat also on
the domestic and cross-traffic addresses):
- TCP 443, TLS-like: reads a TLS ClientHello record, answers with a ServerHello record, a
  ChangeCipherSpec and ~3 kB of application-data records (as TLS 1.3 does), then reads one
  application-data record holding the request: `GET n` (send n bytes), `PUT n` (receive n bytes,
  answer 200 bytes) or `STREAM n kbit` (send n bytes paced at kbit/s, as a video does). Data goes
  out as TLS application-data records of up to 16 kB.
- TCP 5222: chat; each message is answered with an acknowledgement after 10 ms.
- UDP 3478: call relay; answers STUN Binding requests (with XOR-MAPPED-ADDRESS) and, once a client
  sends RTP, streams audio (and video if the client sends video) back to it until it falls
  silent for 2 s.
- UDP 50002 on the two peer addresses: the far end of a peer-to-peer call, answering as the
  relay does (ICE connectivity checks are STUN Binding requests).
- UDP 596-599 and 1400: relay probes; each datagram is answered with one of the same size.
- UDP 443, QUIC-like: a v1 Initial of >= 1,200 bytes is answered with an Initial and a
  Handshake packet; a short-header `GET n` then gets n bytes in 1,200-byte short-header packets.
`--slow ADDR=KBIT:MS` makes the TLS-like and chat servers on ADDR slow: MS of thinking before
each answer, downloads paced at KBIT. `--hello-ms MS` makes every TLS-like server pause MS
before its ServerHello: longer than the kernel's delayed ACK, its bare acknowledgment of the
ClientHello goes first (as from a busy TLS server), where without it the ServerHello carries it.
A DNS server on the DNS address answers *.lab-messenger.test with the messenger address and
*.lab-control.test with the control address.

The client reads a workload (a JSON list of flow specs, each with a start offset) from stdin,
runs every flow in its own thread and prints one JSON list of results: each spec with its local
port, start/end times (Unix seconds), bytes moved by the application and the outcome (`ok`,
`reset`, `stalled`, `cut`, `connect_timeout`, `refused`, `no_answer`, `error`). Flow kinds: dns,
call, chat, tls (get/put/stream), quic, probe.

The delay line creates the TUN device DEV, reads every packet the router routes into it and
writes it back MS milliseconds later (per destination address); lab.py routes the server-bound
traffic through it and the re-injected packets on to the server.

The RST injector (router namespace) watches the LAN and WAN interfaces (AF_PACKET): once a
client sends a TLS ClientHello to ADDR:443, it answers every packet of that connection arriving
from the server (which nftables drops) with an RST/ACK to the client carrying that packet's
sequence and acknowledgement numbers and IP TTL TTL.
"""
import ctypes
import fcntl
import heapq
import json
import os
import random
import select
import socket
import socketserver
import struct
import sys
import threading
import time

# The lab's server addresses (lab.py takes them from here).
MSG_ADDR = "198.51.100.10"  # the messenger
MSG2_ADDR = "198.51.100.11"  # the messenger's second address
CTL_ADDR = "203.0.113.10"  # the control server
DNS_ADDR = "203.0.113.53"
DOM_ADDR = "198.18.0.10"  # a "domestic" server (allowlist)
CROSS_ADDR = "203.0.113.80"  # the cross-traffic server
# Relay ports a messenger's calls probe with 40-byte packets (besides STUN on 3478).
PROBE_PORTS = (596, 597, 598, 599, 1400)
# Peers of peer-to-peer calls (public addresses that are no service's): the messenger's call
# peer and the control call's peer, each on one UDP port, as an ICE host candidate.
MSG_PEER_ADDR = "203.0.113.70"
CTL_PEER_ADDR = "203.0.113.71"
PEER_PORT = 50002
STUN_COOKIE = 0x2112A442
SERVER_TIMEOUT_S = 40
QUIC_V1 = 1
# Server addresses whose application is slow: address -> (kbit/s it sends at, ms it thinks
# before each answer); `serve --slow ADDR=KBIT:MS`.
SLOW = {}
# Milliseconds every TLS-like server pauses before its ServerHello (`serve --hello-ms MS`).
HELLO_MS = 0


# ---------------------------------------------------------------- TLS-like framing

def tls_record(content_type, body):
    return struct.pack("!BHH", content_type, 0x0303, len(body)) + body


def client_hello(sni, rng):
    """A TLS 1.3 ClientHello as browsers send it: 32-byte session id, 15 cipher suites, SNI
    first among the extensions (offset ~120 of the payload, inside a 256-byte snap length)."""
    name = sni.encode()
    suites = [0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013,
              0xC014, 0x009C, 0x009D, 0x002F, 0x0035]
    def ext(kind, body):
        return struct.pack("!HH", kind, len(body)) + body
    exts = ext(0x0000, struct.pack("!HBH", len(name) + 3, 0, len(name)) + name)
    exts += ext(0x0017, b"") + ext(0xFF01, b"\x00")
    exts += ext(0x000A, struct.pack("!H", 8) + struct.pack("!4H", 0x001D, 0x0017, 0x0018, 0x0019))
    exts += ext(0x000B, b"\x01\x00")
    exts += ext(0x0010, b"\x00\x0c\x02h2\x08http/1.1")
    exts += ext(0x000D, struct.pack("!H", 16) + struct.pack("!8H", 0x0403, 0x0804, 0x0401,
                                                                0x0503, 0x0805, 0x0501, 0x0806, 0x0601))
    exts += ext(0x002B, b"\x04\x03\x04\x03\x03")
    exts += ext(0x002D, b"\x01\x01")
    exts += ext(0x0033, struct.pack("!HHH", 36, 0x001D, 32) + rng.randbytes(32))
    head = struct.pack("!H", 0x0303) + rng.randbytes(32) + b"\x20" + rng.randbytes(32)
    head += struct.pack("!H", 2 * len(suites)) + struct.pack("!%dH" % len(suites), *suites)
    head += b"\x01\x00"
    # Padding extension to a 512-byte handshake message, as Chrome does.
    exts += ext(0x0015, bytes(max(0, 512 - 4 - len(head) - 2 - len(exts) - 4)))
    body = head + struct.pack("!H", len(exts)) + exts
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return struct.pack("!BHH", 22, 0x0301, len(hs)) + hs


def server_hello():
    body = struct.pack("!H", 0x0303) + os.urandom(32) + b"\x20" + os.urandom(32)
    body += struct.pack("!HB", 0x1301, 0) + struct.pack("!H", 46)
    body += struct.pack("!HHH", 0x002B, 2, 0x0304) + struct.pack("!HHHH", 0x0033, 36, 0x001D, 32)
    body += os.urandom(32)
    hs = b"\x02" + len(body).to_bytes(3, "big") + body
    flight = tls_record(22, hs) + tls_record(20, b"\x01")
    for size in (40, 2600, 300, 60):  # EncryptedExtensions, Certificate, CertificateVerify, Finished
        flight += tls_record(23, os.urandom(size))
    return flight


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


def recv_record(sock):
    head = recv_exact(sock, 5)
    return head[0], recv_exact(sock, struct.unpack("!H", head[3:5])[0])


def send_records(sock, nbytes, kbit=None):
    """Send `nbytes` of application data as TLS records; paced at `kbit` kbit/s if given (at
    most at a slow server's rate)."""
    slow = SLOW.get(sock.getsockname()[0])
    if slow:
        kbit = min(kbit or slow[0], slow[0])
    chunk = os.urandom(16384)
    sent, start = 0, time.monotonic()
    while sent < nbytes:
        size = min(16384 if kbit is None else 1400, nbytes - sent)
        sock.sendall(tls_record(23, chunk[:size]))
        sent += size
        if kbit:
            time.sleep(max(0.0, start + sent * 8 / (kbit * 1000) - time.monotonic()))
    return sent


# ---------------------------------------------------------------- servers

def think(sock):
    """A slow server application's pause before it answers."""
    slow = SLOW.get(sock.getsockname()[0])
    if slow:
        time.sleep(slow[1] / 1000)


class Tls(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        s.settimeout(SERVER_TIMEOUT_S)
        try:
            kind, _ = recv_record(s)
            if kind != 22:
                return
            time.sleep(HELLO_MS / 1000)
            think(s)
            s.sendall(server_hello())
            recv_record(s)  # the client's ChangeCipherSpec
            recv_record(s)  # and its Finished
            kind, req = recv_record(s)
            think(s)
            words = req.split(b"\n", 1)[0].split()
            n = int(words[1])
            if words[0] == b"GET":
                send_records(s, n)
            elif words[0] == b"STREAM":
                send_records(s, n, int(words[2]))
            elif words[0] == b"PUT":
                got = 0
                while got < n:
                    kind, body = recv_record(s)
                    got += len(body)
                s.sendall(tls_record(23, os.urandom(200)))
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
        except (OSError, ValueError, IndexError):
            pass  # resets, freezes and timeouts are what the lab is for


class Chat(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.settimeout(SERVER_TIMEOUT_S)
        try:
            while True:
                data = self.request.recv(4096)
                if not data:
                    return
                time.sleep(0.01)
                think(self.request)
                self.request.sendall(b"ack:" + data[:64])
        except OSError:
            pass


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def stun_response(req, addr):
    """A Binding success response with XOR-MAPPED-ADDRESS."""
    tid = req[8:20]
    ip = struct.unpack("!I", socket.inet_aton(addr[0]))[0] ^ STUN_COOKIE
    port = addr[1] ^ (STUN_COOKIE >> 16)
    attr = struct.pack("!HHBBHI", 0x0020, 8, 0, 1, port, ip)
    return struct.pack("!HHI", 0x0101, len(attr), STUN_COOKIE) + tid + attr


def is_stun(data):
    return len(data) >= 20 and data[0] < 2 and struct.unpack("!I", data[4:8])[0] == STUN_COOKIE


class Media:
    """RTP senders of one side of a call: Opus audio (PT 111, 48 kHz, 20 ms) and, if asked, VP8
    video (PT 96, 90 kHz, 30 frames/s split into packets of at most 1,100 bytes). With
    `framing="opaque"` the same packets at the same times carry no RTP header, only bytes that
    parse as neither RTP nor STUN (first byte 0x40-0x7F), as a call protocol of its own does
    (Telegram's reflectors)."""

    def __init__(self, rng, video_kbit, framing="rtp"):
        self.rng = rng
        self.audio = [rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(32)]
        self.video = [rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(32)]
        self.video_kbit = video_kbit
        self.framing = framing

    def _packet(self, stream, pt, size, advance, marker=False):
        if self.framing == "opaque":
            return bytes([0x40 | self.rng.getrandbits(6)]) + self.rng.randbytes(size + 11)
        ssrc, seq, ts = stream
        head = struct.pack("!BBHII", 0x80, pt | (0x80 if marker else 0), seq & 0xFFFF,
                           ts & 0xFFFFFFFF, ssrc)
        stream[1] += 1
        stream[2] += advance
        return head + self.rng.randbytes(size)

    def audio_packet(self):
        # Opus VBR voice: 60-110 bytes per 20 ms.
        return self._packet(self.audio, 111, self.rng.randint(60, 110), 960)

    def video_frame(self):
        frame = int(self.video_kbit * 1000 / 8 / 30 * self.rng.uniform(0.6, 1.4))
        packets = []
        while frame > 0:
            size = min(frame, 1100)
            frame -= size
            packets.append(self._packet(self.video, 96, size, 0, marker=frame == 0))
        self.video[2] += 3000
        return packets


def media_loop(send, media, alive, seconds=None):
    """Send audio every 20 ms and video every 33 ms while alive() (or for `seconds`)."""
    start = time.monotonic()
    next_audio = next_video = start
    while alive() and (seconds is None or time.monotonic() - start < seconds):
        now = time.monotonic()
        if now >= next_audio:
            send(media.audio_packet())
            next_audio += 0.02
        if media.video_kbit and now >= next_video:
            for p in media.video_frame():
                send(p)
            next_video += 1 / 30
        time.sleep(max(0.0, min(next_audio, next_video if media.video_kbit else next_audio)
                       - time.monotonic()))


def call_relay(bind):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(bind)
    peers = {}  # addr -> [last heard, video seen, framing]
    lock = threading.Lock()

    def stream(addr):
        with lock:
            framing = peers[addr][2]
        media = Media(random.Random(), 0, framing)
        def alive():
            with lock:
                last, video, _ = peers[addr]
            media.video_kbit = 300 if video else 0
            return time.monotonic() - last < 2.0
        media_loop(lambda p: sock.sendto(p, addr), media, alive)
        with lock:
            del peers[addr]

    while True:
        data, addr = sock.recvfrom(2048)
        if is_stun(data):
            if struct.unpack("!H", data[:2])[0] == 0x0001:
                sock.sendto(stun_response(data, addr), addr)
            continue
        if len(data) < 12:
            continue
        # RTP (version 2) or the opaque framing (first byte 0x40-0x7F, video when large).
        framing = "rtp" if data[0] >> 6 == 2 else "opaque" if data[0] >> 6 == 1 else None
        if framing is None:
            continue
        video = (data[1] & 0x7F) == 96 if framing == "rtp" else len(data) > 300
        with lock:
            if addr in peers:
                peers[addr] = [time.monotonic(), peers[addr][1] or video, framing]
                continue
            peers[addr] = [time.monotonic(), video, framing]
        threading.Thread(target=stream, args=(addr,), daemon=True).start()


def probe_echo(bind):
    """A relay's answer to the 40-byte probes a messenger sends to its relay ports."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(bind)
    while True:
        data, addr = sock.recvfrom(2048)
        sock.sendto(os.urandom(len(data)), addr)


def quic_long(first, dcid, scid, size, payload=b""):
    """A QUIC v1 long-header packet of `size` bytes (random protected payload after `payload`)."""
    head = struct.pack("!BIB", first, QUIC_V1, len(dcid)) + dcid + bytes([len(scid)]) + scid
    if first & 0x30 == 0:  # Initial: token length
        head += b"\x00"
    rest = size - len(head) - 2
    body = payload + os.urandom(max(0, rest - len(payload)))
    return head + struct.pack("!H", 0x4000 | len(body)) + body


def quic_short(dcid, payload, size):
    return bytes([0x40 | 0x03]) + dcid + payload + os.urandom(max(0, size - 1 - len(dcid) - len(payload)))


QUIC_DATA = 1200  # bytes of a QUIC-like data packet
QUIC_KBIT = 8000  # the QUIC-like server's sending rate


def quic_server(bind):
    """QUIC-like server: answers a v1 Initial (>= 1200 bytes) with an Initial and a Handshake
    packet; a short-header packet `GET n` from the client is then answered with n bytes in
    1,200-byte short-header packets (paced at QUIC_KBIT), each carrying its offset, the last
    one flagged and sent three times."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(bind)
    lock = threading.Lock()
    busy = set()

    def send(addr, dcid, n):
        offset, start = 0, time.monotonic()
        while offset < n:
            last = offset + QUIC_DATA >= n
            pkt = quic_short(dcid, struct.pack("!QB", offset, last), QUIC_DATA)
            for _ in range(3 if last else 1):
                sock.sendto(pkt, addr)
            offset += QUIC_DATA
            time.sleep(max(0.0, start + offset * 8 / (QUIC_KBIT * 1000) - time.monotonic()))
        with lock:
            busy.discard(addr)

    while True:
        data, addr = sock.recvfrom(2048)
        if len(data) < 24:
            continue
        try:
            if data[0] & 0xC0 == 0xC0 and struct.unpack("!I", data[1:5])[0] == QUIC_V1:
                dcid_len = data[5]
                scid_len = data[6 + dcid_len]
                scid = data[7 + dcid_len: 7 + dcid_len + scid_len]
                if data[0] & 0x30 == 0 and len(data) >= 1200:
                    server_cid = os.urandom(8)
                    sock.sendto(quic_long(0xC3, scid, server_cid, 1200), addr)
                    sock.sendto(quic_long(0xE3, scid, server_cid, 1000), addr)
                continue
            if data[0] & 0xC0 != 0x40 or data[9:13] != b"GET ":
                continue
            n = min(int(data[13:data.index(b"\n", 13)]), 1 << 30)
        except (IndexError, ValueError):
            continue  # not the lab's client
        with lock:
            if addr in busy:
                continue
            busy.add(addr)
        threading.Thread(target=send, args=(addr, data[1:9], n), daemon=True).start()


def dns_server(bind):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(bind)
    zones = {"lab-messenger.test": MSG_ADDR, "lab-control.test": CTL_ADDR, "lab-domestic.test": DOM_ADDR,
             "lab-cross.test": CROSS_ADDR}
    while True:
        q, addr = sock.recvfrom(512)
        if len(q) < 12:
            continue
        name, i = [], 12
        while i < len(q) and q[i] != 0:
            name.append(q[i + 1: i + 1 + q[i]].decode("ascii", "replace"))
            i += 1 + q[i]
        question = q[12: i + 5]
        name = ".".join(name).lower()
        answer = next((a for zone, a in zones.items() if name == zone or name.endswith("." + zone)), None)
        if answer:
            rr = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + socket.inet_aton(answer)
            sock.sendto(q[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + question + rr, addr)
        else:
            sock.sendto(q[:2] + b"\x81\x83\x00\x01\x00\x00\x00\x00\x00\x00" + question, addr)


def serve(args):
    global HELLO_MS
    if "--hello-ms" in args:
        i = args.index("--hello-ms")
        HELLO_MS = int(args[i + 1])
        args = args[:i] + args[i + 2:]
    for item in args:
        addr, _, rate = item.partition("=")
        kbit, _, ms = rate.partition(":")
        SLOW[addr] = (int(kbit), int(ms))
    for addr in (MSG_ADDR, MSG2_ADDR, CTL_ADDR, DOM_ADDR, CROSS_ADDR):
        for port, handler in ((443, Tls), (5222, Chat)):
            s = Server((addr, port), handler)
            threading.Thread(target=s.serve_forever, daemon=True).start()
    for addr in (MSG_ADDR, MSG2_ADDR, CTL_ADDR):
        threading.Thread(target=call_relay, args=((addr, 3478),), daemon=True).start()
    for addr in (MSG_PEER_ADDR, CTL_PEER_ADDR):
        threading.Thread(target=call_relay, args=((addr, PEER_PORT),), daemon=True).start()
    for addr in (MSG_ADDR, MSG2_ADDR, CTL_ADDR):
        threading.Thread(target=quic_server, args=((addr, 443),), daemon=True).start()
        for port in PROBE_PORTS:
            threading.Thread(target=probe_echo, args=((addr, port),), daemon=True).start()
    threading.Thread(target=dns_server, args=((DNS_ADDR, 53),), daemon=True).start()
    print("serving", flush=True)
    threading.Event().wait()


# ---------------------------------------------------------------- client

USED_PORTS = set()
USED_PORTS_LOCK = threading.Lock()


def client_socket(kind):
    """A socket bound to a local port no earlier flow of this run had: flows stay apart by
    their ports in the trace (the kernel would reuse the port of a connection the server
    closed first)."""
    while True:
        sock = socket.socket(socket.AF_INET, kind)
        sock.bind(("0.0.0.0", 0))
        port = sock.getsockname()[1]
        with USED_PORTS_LOCK:
            if port not in USED_PORTS:
                USED_PORTS.add(port)
                return sock
        sock.close()


class Flow:
    """One flow of the workload: runs its spec, records what the application saw."""

    def __init__(self, spec, t0):
        self.spec, self.t0 = spec, t0
        self.result = dict(spec, port=None, start=None, end=None, sent=0, received=0,
                           outcome="error", error=None)
        self.rng = random.Random(spec.get("seed", 0))

    def run(self):
        time.sleep(max(0.0, self.t0 + self.spec["at"] - time.time()))
        self.result["start"] = time.time()
        try:
            getattr(self, "run_" + self.spec["kind"])()
        except ConnectionResetError as e:
            self.result.update(outcome="reset", error=str(e))
        except (TimeoutError, socket.timeout) as e:
            if self.result["outcome"] == "error":
                self.result.update(outcome="stalled", error=str(e) or "timed out")
        except ConnectionRefusedError as e:
            self.result.update(outcome="refused", error=str(e))
        except OSError as e:
            self.result.update(outcome="error", error=str(e))
        self.result["end"] = time.time()

    def tcp(self, timeout):
        s = client_socket(socket.SOCK_STREAM)
        self.result["port"] = s.getsockname()[1]
        s.settimeout(self.spec.get("connect_timeout_s", 6))
        try:
            s.connect((self.spec["server"], self.spec["server_port"]))
        except (TimeoutError, socket.timeout):
            self.result["outcome"] = "connect_timeout"
            s.close()
            raise
        s.settimeout(timeout)
        return s

    def deadline(self):
        return self.result["start"] + self.spec["max_s"]

    def tls_open(self):
        s = self.tcp(self.spec.get("idle_s", 6))
        hello = client_hello(self.spec["sni"], self.rng)
        s.sendall(hello)
        self.result["sent"] += len(hello)
        # ServerHello .. Finished: six records.
        for _ in range(6):
            _, body = recv_record(s)
            self.result["received"] += 5 + len(body)
        s.sendall(tls_record(20, b"\x01") + tls_record(23, self.rng.randbytes(53)))
        return s

    def run_tls(self):
        """GET / STREAM / PUT over the TLS-like protocol, bounded by max_s and idle_s."""
        spec = self.spec
        s = self.tls_open()
        with s:
            request = {"get": "GET %d", "stream": "STREAM %d %d", "put": "PUT %d"}[spec["op"]]
            args = (spec["bytes"], spec["kbit"]) if spec["op"] == "stream" else (spec["bytes"],)
            s.sendall(tls_record(23, (request % args).encode() + b"\n" + self.rng.randbytes(200)))
            if spec["op"] == "put":
                chunk, uploaded = self.rng.randbytes(16384), 0
                while uploaded < spec["bytes"] and time.time() < self.deadline():
                    size = min(16384, spec["bytes"] - uploaded)
                    s.sendall(tls_record(23, chunk[:size]))
                    uploaded += size
                    self.result["sent"] += 5 + size
                if uploaded < spec["bytes"]:
                    self.result["outcome"] = "cut"
                    return
            while True:
                if time.time() >= self.deadline():
                    self.result["outcome"] = "cut"
                    return
                s.settimeout(min(spec.get("idle_s", 6), max(0.05, self.deadline() - time.time())))
                try:
                    data = s.recv(65536)
                except (TimeoutError, socket.timeout):
                    if time.time() >= self.deadline():
                        self.result["outcome"] = "cut"
                        return
                    self.result["outcome"] = "stalled"
                    raise
                if not data:
                    self.result["outcome"] = "ok"
                    return
                self.result["received"] += len(data)

    def run_chat(self):
        s = self.tcp(self.spec.get("idle_s", 6))
        with s:
            i = 0
            while time.time() < self.deadline():
                msg = b"message %d " % i + self.rng.randbytes(self.rng.randint(20, 300))
                s.sendall(msg)
                self.result["sent"] += len(msg)
                self.result["received"] += len(s.recv(4096))
                i += 1
                time.sleep(self.spec.get("every_s", 1.0))
            self.result["outcome"] = "ok"

    def run_call(self):
        """STUN Binding (retransmitted at 0.5, 1, 2, 4 s until answered), then audio (+video)
        RTP both ways with a STUN keepalive every `keepalive_s`; ends after max_s. A call with
        a `relay` first asks the relay for the client's address over the same socket (STUN,
        as an ICE server-reflexive candidate; up to 4 s), then runs peer-to-peer with `server`:
        its Binding requests there are ICE connectivity checks (USERNAME "peer:local")."""
        spec = self.spec
        peer = (spec["server"], spec["server_port"])
        sock = client_socket(socket.SOCK_DGRAM)
        self.result["port"] = sock.getsockname()[1]
        stop = threading.Event()
        answered = threading.Event()
        stats = {"stun_requests": 0, "stun_answers": 0, "rtp_received": 0}
        relay = (spec["relay"], spec["relay_port"]) if spec.get("relay") else None
        if relay:
            stats.update(relay_stun_requests=0, relay_stun_answers=0, relay_sent=0, relay_received=0)
        username = None
        if relay:
            local, remote = self.rng.randbytes(4).hex(), self.rng.randbytes(4).hex()
            username = ("%s:%s" % (remote, local)).encode()

        def binding(to, counter, user=None):
            attrs = b""
            if user:
                pad = b"\0" * (-len(user) % 4)
                attrs = struct.pack("!HH", 0x0006, len(user)) + user + pad
            req = struct.pack("!HHI", 0x0001, len(attrs), STUN_COOKIE) + self.rng.randbytes(12) + attrs
            sock.sendto(req, to)
            stats[counter] += 1
            if to == relay:
                stats["relay_sent"] += len(req)
            else:
                self.result["sent"] += len(req)

        def receiver():
            sock.settimeout(0.2)
            while not stop.is_set():
                try:
                    data, src = sock.recvfrom(2048)
                except (TimeoutError, socket.timeout):
                    continue
                if src == relay:
                    stats["relay_received"] += len(data)
                    stats["relay_stun_answers"] += is_stun(data)
                    relayed.set()
                    continue
                self.result["received"] += len(data)
                if is_stun(data):
                    stats["stun_answers"] += 1
                    answered.set()
                else:
                    stats["rtp_received"] += 1

        relayed = threading.Event()
        rx = threading.Thread(target=receiver, daemon=True)
        rx.start()
        if relay:
            wait, until = 0.5, min(time.time() + 4.0, self.deadline())
            while not relayed.is_set() and time.time() < until:
                binding(relay, "relay_stun_requests")
                relayed.wait(min(wait, max(0.0, until - time.time())))
                wait = min(wait * 2, 4.0)
            self.result["relay_outcome"] = "ok" if relayed.is_set() else "no_answer"
        wait = 0.5
        while not answered.is_set() and time.time() < self.deadline():
            binding(peer, "stun_requests", username)
            answered.wait(min(wait, max(0.0, self.deadline() - time.time())))
            wait = min(wait * 2, 4.0)
        if answered.is_set():
            media = Media(self.rng, spec.get("video_kbit", 0), spec.get("framing", "rtp"))
            next_keepalive = time.monotonic() + spec.get("keepalive_s", 2.5)

            def send(p):
                nonlocal next_keepalive
                sock.sendto(p, peer)
                self.result["sent"] += len(p)
                if time.monotonic() >= next_keepalive:
                    binding(peer, "stun_requests", username)
                    next_keepalive += spec.get("keepalive_s", 2.5)
            media_loop(send, media, lambda: True, max(0.0, self.deadline() - time.time()))
            self.result["outcome"] = "ok"
        else:
            self.result["outcome"] = "no_answer"
        stop.set()
        rx.join()
        sock.close()
        self.result.update(stats)

    def run_quic(self):
        """A QUIC-like fetch: a 1,200-byte v1 Initial (retransmitted after 0.5, 1, 2, 4 s
        until answered), then a Handshake packet and a short-header `GET n`; the server's data
        packets are counted until the flagged last one (`ok`), silence for 3 s (`stalled`) or
        max_s (`cut`)."""
        spec = self.spec
        peer = (spec["server"], spec["server_port"])
        sock = client_socket(socket.SOCK_DGRAM)
        self.result["port"] = sock.getsockname()[1]
        dcid, scid = self.rng.randbytes(8), self.rng.randbytes(8)
        initials, wait, answer = 0, 0.5, None
        with sock:
            while answer is None and time.time() < self.deadline():
                sock.sendto(quic_long(0xC3, dcid, scid, 1200), peer)
                initials += 1
                self.result["sent"] += 1200
                sock.settimeout(max(0.05, min(wait, self.deadline() - time.time())))
                try:
                    answer = sock.recv(2048)
                except (TimeoutError, socket.timeout):
                    wait = min(wait * 2, 4.0)
            self.result["initials"] = initials
            if answer is None:
                self.result["outcome"] = "no_answer"
                return
            self.result["received"] += len(answer)
            server_cid = answer[7 + answer[5]: 7 + answer[5] + answer[6 + answer[5]]]
            sock.sendto(quic_long(0xE3, server_cid, scid, 120), peer)
            sock.sendto(quic_short(server_cid, b"GET %d\n" % spec["bytes"], 60), peer)
            offsets, count = set(), 0
            while True:
                if time.time() >= self.deadline():
                    self.result["outcome"] = "cut"
                    return
                sock.settimeout(min(3.0, max(0.05, self.deadline() - time.time())))
                try:
                    data = sock.recv(2048)
                except (TimeoutError, socket.timeout):
                    self.result["outcome"] = "cut" if time.time() >= self.deadline() else "stalled"
                    return
                self.result["received"] += len(data)
                if data[0] & 0xC0 != 0x40 or len(data) < 18:
                    continue
                offset, last = struct.unpack("!QB", data[9:18])
                offsets.add(offset)
                count += 1
                if count % 10 == 0:  # an ACK-like packet now and then
                    sock.sendto(quic_short(server_cid, b"", 40), peer)
                    self.result["sent"] += 40
                if last:
                    self.result["outcome"] = "ok" if len(offsets) * QUIC_DATA >= spec["bytes"] else "cut"
                    return

    def run_probe(self):
        """40-byte probes to a relay port every `every_s` for max_s; `ok` once one is answered."""
        spec = self.spec
        sock = client_socket(socket.SOCK_DGRAM)
        self.result["port"] = sock.getsockname()[1]
        sent = answered = 0
        with sock:
            while time.time() < self.deadline():
                sock.sendto(self.rng.randbytes(40), (spec["server"], spec["server_port"]))
                sent += 1
                until = time.time() + spec["every_s"]
                while time.time() < until:
                    sock.settimeout(max(0.01, until - time.time()))
                    try:
                        self.result["received"] += len(sock.recv(2048))
                        answered += 1
                    except (TimeoutError, socket.timeout):
                        break
        self.result.update(sent=sent * 40, probes_sent=sent, probes_answered=answered,
                           outcome="ok" if answered else "no_answer")

    def run_dns(self):
        sock = client_socket(socket.SOCK_DGRAM)
        self.result["port"] = sock.getsockname()[1]
        sock.settimeout(2)
        name = self.spec["name"]
        qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
        sock.sendto(struct.pack("!HHHHHH", self.rng.getrandbits(16), 0x0100, 1, 0, 0, 0) + qname
                    + b"\0\1\0\1", (DNS_ADDR, 53))
        resp = sock.recv(512)
        self.result["received"] = len(resp)
        self.result["answer"] = socket.inet_ntoa(resp[-4:]) if resp[3] & 0x0F == 0 else None
        self.result["outcome"] = "ok"
        sock.close()


def client():
    workload = json.load(sys.stdin)
    t0 = time.time()
    # The workload's time zero, for timed impairments (lab.py: the onset); the results follow
    # on the next line.
    print("started %.6f" % t0, flush=True)
    flows = [Flow(spec, t0) for spec in workload]
    threads = [threading.Thread(target=f.run, daemon=True) for f in flows]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    json.dump([f.result for f in flows], sys.stdout)
    sys.stdout.write("\n")


# ---------------------------------------------------------------- delay line

def delay_line(dev, rules):
    """Hold each packet routed into the TUN device for its destination's delay, then re-inject
    it. The kernel forwards what comes back out of the device (policy routing in lab.py)."""
    TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", dev.encode(), IFF_TUN | IFF_NO_PI))
    delays = {socket.inet_aton(a): float(ms) / 1000 for a, ms in (r.split("=") for r in rules)}
    print("delaying", flush=True)
    queue, seq = [], 0
    while True:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else None
        ready, _, _ = select.select([fd], [], [], timeout)
        if ready:
            packet = os.read(fd, 65536)
            dst = packet[16:20] if packet and packet[0] >> 4 == 4 else b""
            heapq.heappush(queue, (time.monotonic() + delays.get(dst, 0.0), seq, packet))
            seq += 1
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            os.write(fd, heapq.heappop(queue)[2])


# ---------------------------------------------------------------- RST injector

def inet_checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def rst_ack(src, dst, sport, dport, seq, ack, ttl):
    """An IPv4 RST/ACK segment (no payload, window 0) with the given sequence numbers."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, 0x14, 0, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", inet_checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.getrandbits(16), 0x4000, ttl, 6, 0,
                     src, dst)
    ip = ip[:10] + struct.pack("!H", inet_checksum(ip)) + ip[12:]
    return ip + tcp


def inject_rst(lan, wan, server, ttl):
    """Router namespace: once a client sends a TLS ClientHello to `server`:443 (seen on `lan`),
    every packet of that connection the server sends (seen arriving on `wan`; nftables drops
    it) is answered towards the client by an RST/ACK carrying its sequence and acknowledgement
    numbers, with IP TTL `ttl`."""
    ETH_P_IP, PACKET_OUTGOING, SO_ATTACH_FILTER = 0x0800, 4, 26
    srv = socket.inet_aton(server)
    # Classic BPF on the IP header: TCP from or to `server`.
    k = struct.unpack("!I", srv)[0]
    prog = [(0x30, 0, 0, 9), (0x15, 0, 5, 6), (0x20, 0, 0, 12), (0x15, 2, 0, k), (0x20, 0, 0, 16),
            (0x15, 0, 1, k), (0x06, 0, 0, 0xFFFF), (0x06, 0, 0, 0)]
    code = b"".join(struct.pack("HBBI", *insn) for insn in prog)
    buf = ctypes.create_string_buffer(code)
    fprog = struct.pack("HL", len(prog), ctypes.addressof(buf))
    taps = {}
    for dev in (lan, wan):
        tap = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
        tap.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        tap.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        tap.bind((dev, ETH_P_IP))
        taps[tap] = dev
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    hello = set()  # (client address, client port)
    print("ready", flush=True)
    while True:
        ready, _, _ = select.select(list(taps), [], [])
        for tap in ready:
            pkt, addr = tap.recvfrom(65536)
            if addr[2] == PACKET_OUTGOING or len(pkt) < 40 or pkt[9] != 6:
                continue
            ihl = (pkt[0] & 0x0F) * 4
            if len(pkt) < ihl + 20:
                continue
            sport, dport, seq, ack, off = struct.unpack("!HHIIB", pkt[ihl:ihl + 13])
            payload = pkt[ihl + (off >> 4) * 4:]
            if taps[tap] == lan and pkt[16:20] == srv and dport == 443:
                if len(payload) > 5 and payload[0] == 0x16 and payload[5] == 1:
                    hello.add((pkt[12:16], sport))
            elif taps[tap] == wan and pkt[12:16] == srv and sport == 443 and (pkt[16:20], dport) in hello:
                raw.sendto(rst_ack(srv, pkt[16:20], sport, dport, seq, ack, ttl),
                           (socket.inet_ntoa(pkt[16:20]), 0))


def main():
    if sys.argv[1:2] == ["serve"]:
        serve([a for a in sys.argv[2:] if a != "--slow"])
    elif sys.argv[1:2] == ["inject-rst"] and len(sys.argv) == 6:
        inject_rst(*sys.argv[2:5], int(sys.argv[5]))
    elif sys.argv[1:2] == ["client"]:
        client()
    elif sys.argv[1:2] == ["delay"] and len(sys.argv) > 3:
        delay_line(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
