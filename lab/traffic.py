#!/usr/bin/env python3
"""Lab traffic: real sockets on real kernels, inside the lab's namespaces.

    traffic.py serve                      # in the server namespace
    traffic.py client sample|bench [MB]   # in the client namespace

Servers (addresses from netns.sh): on the messenger address a chat service (TCP 5222, echoes),
a download service (TCP 443, sends the requested number of bytes), a reset service (TCP 8443,
sends 30 kB then resets the connection), and a call relay (UDP 3478: answers STUN binding
requests, then streams RTP back to whoever sends RTP); on the control address the same download
service and an RTP endpoint (UDP 5004); a DNS server on the DNS address answering
*.lab-messenger.test with the messenger address.

    traffic.py delay DEV ADDR=MS...       # in the router namespace: a delay line (no netem here)

The delay line creates the TUN device DEV, reads every packet routed into it and writes it back
MS milliseconds later (per destination address); netns.sh's lab_delay routes the server-bound
traffic through it and the re-injected packets on to the server.
Standard library only.
"""
import fcntl
import heapq
import os
import random
import select
import socket
import socketserver
import struct
import sys
import threading
import time

MSG_ADDR = "198.51.100.10"
CTL_ADDR = "203.0.113.10"
DNS_ADDR = "203.0.113.53"
STUN_COOKIE = 0x2112A442


# ---------------------------------------------------------------- servers

class Download(socketserver.BaseRequestHandler):
    """Reads an 8-byte request 'GET nnnn' (bytes as decimal after GET) and sends that many."""

    def handle(self):
        req = self.request.recv(64)
        n = int(req.split()[1]) if req.startswith(b"GET ") else 100_000
        chunk = os.urandom(16384)
        sent = 0
        while sent < n:
            sent += self.request.send(chunk[: min(len(chunk), n - sent)])
        self.request.shutdown(socket.SHUT_WR)
        self.request.recv(1)


class Chat(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(4096)
            if not data:
                return
            time.sleep(0.01)
            self.request.sendall(b"ack:" + data)


class Reset(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.recv(64)
        self.request.sendall(os.urandom(30_000))
        time.sleep(0.05)
        # SO_LINGER with a zero timeout: close() sends an RST instead of a FIN.
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.request.close()


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


def rtp_packet(seq, ts, ssrc, pt=111, size=120):
    return struct.pack("!BBHII", 0x80, pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + os.urandom(size)


def call_relay(bind):
    """Answers STUN; streams RTP (20 ms, 48 kHz clock) back to each RTP sender until it stops."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(bind)
    streams = {}
    while True:
        data, addr = sock.recvfrom(2048)
        if len(data) >= 20 and data[0] < 2 and struct.unpack("!I", data[4:8])[0] == STUN_COOKIE:
            sock.sendto(stun_response(data, addr), addr)
        elif data and data[0] >> 6 == 2 and addr not in streams:
            streams[addr] = threading.Thread(target=rtp_stream, args=(sock, addr, streams), daemon=True)
            streams[addr].start()
        elif addr in streams:
            streams[addr].last = time.monotonic()


def rtp_stream(sock, addr, streams):
    me = threading.current_thread()
    me.last = time.monotonic()
    ssrc, seq, ts = random.getrandbits(32), random.getrandbits(16), random.getrandbits(32)
    start = time.monotonic()
    n = 0
    while time.monotonic() - me.last < 0.5:
        sock.sendto(rtp_packet(seq, ts, ssrc), addr)
        seq, ts, n = seq + 1, ts + 960, n + 1
        time.sleep(max(0, start + n * 0.02 - time.monotonic()))
    del streams[addr]


def dns_server(bind):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(bind)
    while True:
        q, addr = sock.recvfrom(512)
        if len(q) < 12:
            continue
        qid = q[:2]
        name, i = [], 12
        while i < len(q) and q[i] != 0:
            name.append(q[i + 1 : i + 1 + q[i]].decode("ascii", "replace"))
            i += 1 + q[i]
        question = q[12 : i + 5]
        name = ".".join(name).lower()
        if name.endswith("lab-messenger.test"):
            answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + socket.inet_aton(MSG_ADDR)
            sock.sendto(qid + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + question + answer, addr)
        else:
            sock.sendto(qid + b"\x81\x83\x00\x01\x00\x00\x00\x00\x00\x00" + question, addr)


def serve():
    servers = [
        Server((MSG_ADDR, 5222), Chat),
        Server((MSG_ADDR, 443), Download),
        Server((MSG_ADDR, 8443), Reset),
        Server((CTL_ADDR, 443), Download),
    ]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    for target, bind in ((call_relay, (MSG_ADDR, 3478)), (call_relay, (CTL_ADDR, 5004)), (dns_server, (DNS_ADDR, 53))):
        threading.Thread(target=target, args=(bind,), daemon=True).start()
    print("serving", flush=True)
    threading.Event().wait()


# ---------------------------------------------------------------- clients

def resolve(name):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2)
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    sock.sendto(struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0) + qname + b"\0\1\0\1", (DNS_ADDR, 53))
    resp = sock.recv(512)
    return socket.inet_ntoa(resp[-4:])


def download(addr, port, nbytes):
    with socket.create_connection((addr, port), timeout=10) as s:
        s.sendall(b"GET %d\n" % nbytes)
        got = 0
        while True:
            data = s.recv(65536)
            if not data:
                break
            got += len(data)
    return got


def chat(addr, messages):
    with socket.create_connection((addr, 5222), timeout=5) as s:
        for i in range(messages):
            s.sendall(b"message %d" % i)
            s.recv(4096)
            time.sleep(0.2)


def reset_download(addr):
    try:
        with socket.create_connection((addr, 8443), timeout=5) as s:
            s.sendall(b"GET\n")
            while s.recv(65536):
                pass
    except ConnectionResetError:
        pass


def call(addr, port, seconds, stun=True):
    """STUN binding, then RTP for `seconds` from one socket, as a call client does."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.001)
    if stun:
        req = struct.pack("!HHI", 0x0001, 0, STUN_COOKIE) + os.urandom(12)
        sock.sendto(req, (addr, port))
        time.sleep(0.05)
    ssrc, seq, ts = random.getrandbits(32), random.getrandbits(16), random.getrandbits(32)
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        sock.sendto(rtp_packet(seq, ts, ssrc), (addr, port))
        seq, ts, n = seq + 1, ts + 960, n + 1
        try:
            while True:
                sock.recv(2048)
        except (socket.timeout, BlockingIOError):
            pass
        time.sleep(max(0, start + n * 0.02 - time.monotonic()))


def scenario_sample():
    """The shipped sample: a messenger call with 2% loss on the way down, chat, a download that
    is reset, downloads from messenger and control, and a control call."""
    addr = resolve("chat.lab-messenger.test")
    assert addr == MSG_ADDR, addr
    threads = [
        threading.Thread(target=call, args=(MSG_ADDR, 3478, 6)),
        threading.Thread(target=call, args=(CTL_ADDR, 5004, 6, False)),
        threading.Thread(target=chat, args=(MSG_ADDR, 8)),
    ]
    for t in threads:
        t.start()
    time.sleep(1)
    download(MSG_ADDR, 443, 400_000)
    download(CTL_ADDR, 443, 400_000)
    reset_download(MSG_ADDR)
    for t in threads:
        t.join()


def delay_line(dev, rules):
    """Hold each packet routed into the TUN device for its destination's delay, then re-inject
    it. The kernel forwards what comes back out of the device (policy routing in netns.sh)."""
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


def scenario_bench(megabytes):
    """The benchmark trace: four parallel bulk downloads (two from the messenger, two from the
    control server), two calls, chat, and 300 short connections."""
    resolve("chat.lab-messenger.test")
    n = megabytes * 1_000_000 // 4
    threads = [threading.Thread(target=download, args=(a, 443, n)) for a in (MSG_ADDR, MSG_ADDR, CTL_ADDR, CTL_ADDR)]
    threads += [
        threading.Thread(target=call, args=(MSG_ADDR, 3478, 20)),
        threading.Thread(target=call, args=(CTL_ADDR, 5004, 20, False)),
        threading.Thread(target=chat, args=(MSG_ADDR, 50)),
    ]
    for t in threads:
        t.start()
    for i in range(300):
        download(MSG_ADDR if i % 2 else CTL_ADDR, 443, 10_000)
    for t in threads:
        t.join()


def main():
    random.seed(int(os.environ.get("LAB_SEED", "1")))
    if sys.argv[1:2] == ["serve"]:
        serve()
    elif sys.argv[1:2] == ["delay"] and len(sys.argv) > 3:
        delay_line(sys.argv[2], sys.argv[3:])
    elif sys.argv[1:3] == ["client", "sample"]:
        scenario_sample()
    elif sys.argv[1:3] == ["client", "bench"]:
        scenario_bench(int(sys.argv[3]) if len(sys.argv) > 3 else 800)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
