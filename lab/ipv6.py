#!/usr/bin/env python3
"""Rewrite a lab trace as the same traffic over IPv6, to check that measurements and verdicts
do not depend on the IP version (benches/accuracy.py `report --ipv6`, tests/lab.rs).

    lab/ipv6.py trace IN.pcap OUT.pcap [--lan global|ula]
    lab/ipv6.py catalogue IN.toml OUT.toml

Every IPv4 packet of an Ethernet pcap becomes an IPv6 packet with the same transport header
and payload bytes, times, hop limit and traffic class; fragments get a fragment header, ICMP
echo and destination-unreachable become ICMPv6 (the quoted packet rewritten too). Transport
checksums are adjusted to the new pseudo-header (RFC 1624), so they stay valid where they
were. Addresses map one to one: the client's LAN 192.168.50.0/24 to 2001:db8:50::/64 with
`--lan global` (the default: an IPv6 home network has global addresses, no NAT) or to
fd00:50::/64 with `--lan ula`; every other address a.b.c.d to 2001:db8:ffff::a.b.c.d. Inside
UDP payloads, DNS A queries and answers become AAAA, and STUN's (XOR-)address attributes carry
the mapped IPv6 address. Each packet's captured transport bytes are the IPv4 packet's: the
frames grow by the 20 bytes (28 with a fragment header) of the larger IP header.

`catalogue` adds the mapped IPv6 prefix of every IPv4 range of a services file. Exit status 0,
1 on a file it cannot read or rewrite (the message names it), 2 on bad usage.
"""
import argparse
import ipaddress
import re
import struct
import sys
import zlib

STUN_COOKIE = 0x2112A442
# MAPPED-, RESPONSE-, SOURCE-, CHANGED-ADDRESS and REFLECTED-FROM (RFC 3489).
STUN_ADDRESS_ATTRS = {0x0001, 0x0002, 0x0004, 0x0005, 0x000B}
# XOR-MAPPED-, XOR-PEER-, XOR-RELAYED-ADDRESS and the pre-RFC XOR-MAPPED-ADDRESS.
STUN_XOR_ADDRESS_ATTRS = {0x0020, 0x0012, 0x0016, 0x8020}
STUN_FINGERPRINT = 0x8028
LAN = ipaddress.ip_network("192.168.50.0/24")
LAN6 = {"global": ipaddress.ip_network("2001:db8:50::/64"),
        "ula": ipaddress.ip_network("fd00:50::/64")}
OTHER6 = ipaddress.ip_network("2001:db8:ffff::/96")


class Fail(Exception):
    """A file that cannot be read or rewritten (exit status 1)."""


class Mapper:
    """IPv4 addresses to IPv6, one to one (module docstring)."""

    def __init__(self, lan):
        self.lan6 = LAN6[lan]

    def addr(self, v4):
        """16 bytes for 4."""
        a = ipaddress.IPv4Address(v4)
        if a in LAN:
            return (self.lan6.network_address + (int(a) - int(LAN.network_address))).packed
        return (OTHER6.network_address + int(a)).packed


def csum_add(s, data):
    if len(data) % 2:
        data += b"\0"
    for (w,) in struct.iter_unpack("!H", data):
        s += w
    return s


def fold(s):
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def checksum(data):
    return (~fold(csum_add(0, data))) & 0xFFFF


def adjust(old, removed, added):
    """RFC 1624: the checksum `old` after the summed words `removed` are replaced by `added`."""
    s = (~old & 0xFFFF) + (~fold(removed) & 0xFFFF) + fold(added)
    return (~fold(s)) & 0xFFFF


def pseudo4(src, dst, proto, length):
    return csum_add(0, src + dst + struct.pack("!BBH", 0, proto, length))


def pseudo6(src, dst, nh, length):
    return csum_add(0, src + dst + struct.pack("!IxxxB", length, nh))


def rewrite_dns(p, m):
    """A questions and answers as AAAA: (the message as far as captured, its growth in bytes)."""
    if len(p) < 12:
        return None
    counts = struct.unpack("!HHHH", p[4:12])
    out, i, growth = bytearray(p[:12]), 12, 0

    def name(i):
        while True:
            n = p[i]
            if n & 0xC0 == 0xC0:
                return i + 2
            i += 1
            if n == 0:
                return i
            i += n

    try:
        for _ in range(counts[0]):
            j = name(i)
            qtype, qclass = struct.unpack("!HH", p[j:j + 4])
            out += p[i:j] + struct.pack("!HH", 28 if qtype == 1 else qtype, qclass)
            i = j + 4
        for _ in range(sum(counts[1:])):
            j = name(i)
            rtype, rclass, ttl, rdlen = struct.unpack("!HHIH", p[j:j + 10])
            after = j + 10 + rdlen
            rdata = p[j + 10:after]
            if rtype == 1 and rdlen == 4:
                # An address cut by the snap length stays cut, at the same share of it.
                rtype, rdlen, rdata = 28, 16, m.addr(rdata.ljust(4, b"\0"))[:4 * len(rdata)]
                growth += 12
            out += p[i:j] + struct.pack("!HHIH", rtype, rclass, ttl, rdlen) + rdata
            i = after
    except (IndexError, struct.error):
        pass
    return bytes(out + p[i:]), growth


def rewrite_stun(p, m):
    if len(p) < 20 or p[0] >= 2 or struct.unpack("!I", p[4:8])[0] != STUN_COOKIE:
        return None
    length = struct.unpack("!H", p[2:4])[0]
    if 20 + length != len(p):
        return None
    xor = p[4:20]
    out, i, changed, fingerprint = bytearray(), 20, False, False
    while i + 4 <= len(p):
        t, n = struct.unpack("!HH", p[i:i + 4])
        v = p[i + 4:i + 4 + n]
        after = i + 4 + n + (-n) % 4
        if (t in STUN_ADDRESS_ATTRS or t in STUN_XOR_ADDRESS_ATTRS) and n == 8 and v[1] == 1:
            ip4 = v[4:8]
            if t in STUN_XOR_ADDRESS_ATTRS:
                ip4 = bytes(a ^ b for a, b in zip(ip4, xor))
                ip6 = bytes(a ^ b for a, b in zip(m.addr(ip4), xor))
            else:
                ip6 = m.addr(ip4)
            out += struct.pack("!HHBBH", t, 20, 0, 2, struct.unpack("!H", v[2:4])[0]) + ip6
            changed = True
        elif t == STUN_FINGERPRINT:  # the last attribute: recomputed below
            fingerprint = True
        else:
            out += p[i:after]
        i = after
    if not changed:
        return None
    msg = p[:2] + struct.pack("!H", len(out) + (8 if fingerprint else 0)) + p[4:20] + bytes(out)
    if fingerprint:
        msg += struct.pack("!HHI", STUN_FINGERPRINT, 4, (zlib.crc32(msg) ^ 0x5354554E) & 0xFFFFFFFF)
    return msg


def rewrite_udp_payload(sport, dport, payload, complete, m):
    """(the payload as far as captured, its growth), or None to keep it."""
    if 53 in (sport, dport):
        return rewrite_dns(payload, m)
    msg = rewrite_stun(payload, m) if complete else None
    return msg and (msg, len(msg) - len(payload))


def ipv6_packet(ip, m):
    """(IPv6 packet bytes as captured, growth of the packet's length on the wire), or None for
    what is not IPv4."""
    if len(ip) < 20 or ip[0] >> 4 != 4:
        return None
    ihl = (ip[0] & 15) * 4
    tos, total = ip[1], struct.unpack("!H", ip[2:4])[0]
    ident, frag = struct.unpack("!HH", ip[4:8])
    ttl, proto = ip[8], ip[9]
    src4, dst4 = ip[12:16], ip[16:20]
    src, dst = m.addr(src4), m.addr(dst4)
    body = bytearray(ip[ihl:])
    body_len = total - ihl
    offset, more = (frag & 0x1FFF) * 8, bool(frag & 0x2000)
    fragmented = offset or more
    nh = 58 if proto == 1 else proto
    first = offset == 0
    if first and proto in (6, 17) and len(body) >= (18 if proto == 6 else 8):
        at = 16 if proto == 6 else 6
        old = struct.unpack("!H", body[at:at + 2])[0]
        if not (proto == 17 and old == 0):
            pseudo = (pseudo4(src4, dst4, proto, body_len), pseudo6(src, dst, proto, body_len))
            new = adjust(old, *pseudo)
            body[at:at + 2] = struct.pack("!H", new or 0xFFFF)
        if proto == 17 and not fragmented:
            sport, dport = struct.unpack("!HH", body[:4])
            rewritten = rewrite_udp_payload(sport, dport, bytes(body[8:]), len(body) == body_len, m)
            if rewritten is not None:
                complete = len(body) == body_len
                body = body[:8] + rewritten[0]
                body_len += rewritten[1]
                body[4:6] = struct.pack("!H", body_len)
                if complete:
                    body[6:8] = b"\0\0"
                    whole = src + dst + struct.pack("!IxxxB", body_len, 17) + bytes(body)
                    body[6:8] = struct.pack("!H", checksum(whole) or 0xFFFF)
    elif first and proto == 1 and len(body) >= 8:
        t, code = body[0], body[1]
        if t in (0, 8):
            body[0] = 129 if t == 0 else 128
        elif t == 3:
            # Unreachable network, host, port, administratively prohibited (also for a network or
            # a host, RFC 7915 4.2);
            # fragmentation needed is Packet Too Big.
            body[0], body[1] = (2, 0) if code == 4 else (1, {0: 0, 1: 3, 3: 4, 9: 1, 10: 1, 13: 1}.get(code, 0))
            inner = ipv6_packet(bytes(body[8:]), m)
            if inner is not None:
                quoted, _ = inner
                body_len += len(quoted) - len(body[8:])
                body = body[:8] + quoted
        else:
            return None
        if len(body) == body_len:
            body[2:4] = b"\0\0"
            whole = src + dst + struct.pack("!IxxxB", body_len, 58) + bytes(body)
            body[2:4] = struct.pack("!H", checksum(whole))
    payload_len = body_len + (8 if fragmented else 0)
    first_header = 44 if fragmented else nh
    head = struct.pack("!IHBB", 6 << 28 | tos << 20, payload_len, first_header, ttl) + src + dst
    if fragmented:
        head += struct.pack("!BxHI", nh, offset | more, ident)
    packet = head + bytes(body)
    return packet, len(head) + body_len - total


def translate(src, dst, lan):
    m = Mapper(lan)
    data = open(src, "rb").read()
    if len(data) < 24:
        raise Fail("%s: too short for a pcap file" % src)
    magic = data[:4]
    endian = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\x4d\x3c\xb2\xa1": "<",
              b"\xa1\xb2\x3c\x4d": ">"}.get(magic)
    if endian is None:
        raise Fail("%s: not a classic pcap file (pcapng is not rewritten)" % src)
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:
        raise Fail("%s: link type %d; only Ethernet (1) is rewritten" % (src, linktype))
    out = bytearray(data[:16] + struct.pack(endian + "II", 262144, 1))
    i = 24
    while i + 16 <= len(data):
        sec, frac, caplen, wire = struct.unpack(endian + "IIII", data[i:i + 16])
        frame = data[i + 16:i + 16 + caplen]
        i += 16 + caplen
        if len(frame) != caplen:
            raise Fail("%s: the last record is cut short" % src)
        new = None
        if len(frame) >= 14 and frame[12:14] == b"\x08\x00":
            r = ipv6_packet(frame[14:], m)
            if r is not None:
                packet, growth = r
                new = frame[:12] + b"\x86\xdd" + packet
                wire += growth
        if new is None:
            new = frame
        out += struct.pack(endian + "IIII", sec, frac, len(new), max(wire, len(new))) + new
    open(dst, "wb").write(out)


def catalogue(src, dst):
    """Each "a.b.c.d/n" range of a services file followed by its mapped IPv6 prefix."""
    text = open(src).read()
    m = Mapper("global")

    def six(match):
        net = ipaddress.ip_network(match.group(1))
        if net.overlaps(LAN):
            return match.group(0)
        mapped = ipaddress.IPv6Address(m.addr(net.network_address.packed))
        return '"%s", "%s/%d"' % (net, mapped, 96 + net.prefixlen)
    open(dst, "w").write(re.sub(r'"(\d+\.\d+\.\d+\.\d+/\d+)"', six, text))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("trace")
    t.add_argument("input")
    t.add_argument("output")
    t.add_argument("--lan", choices=sorted(LAN6), default="global")
    c = sub.add_parser("catalogue")
    c.add_argument("input")
    c.add_argument("output")
    args = ap.parse_args()
    try:
        if args.cmd == "trace":
            translate(args.input, args.output, args.lan)
        else:
            catalogue(args.input, args.output)
    except (OSError, Fail) as e:
        print("lab/ipv6.py: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
