#!/bin/sh
# Runtime test, by the OpenWrt packages feed's convention: after installing each package built
# from this folder, CI runs `sh test.sh PACKAGE VERSION` on the target (VERSION without the
# release). It runs offline: the trace it analyzes is written here by printf (octal escapes,
# as POSIX printf has no \x), so the package ships no test data. tests/openwrt.rs runs this
# script against the host build.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: sh test.sh PACKAGE VERSION" >&2
	exit 2
fi

case "$1" in
throttlewatch) ;;
*)
	echo "test.sh: no test for package $1"
	exit 0
	;;
esac

version_line=$(throttlewatch --version)
case "$version_line" in
*" $2") echo "test.sh: $version_line" ;;
*)
	echo "test.sh: expected version $2, got: $version_line" >&2
	exit 1
	;;
esac

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
pcap="$dir/one-udp.pcap"
{
	# pcap file header (little-endian): magic a1b2c3d4, version 2.4, time zone 0, sigfigs 0,
	# snap length 65535, link type 1 (Ethernet).
	printf '\324\303\262\241\002\000\004\000\000\000\000\000\000\000\000\000'
	printf '\377\377\000\000\001\000\000\000'
	# Record header: time 1800000000.000000 s (2027-01-15), 46 bytes captured of 46.
	printf '\000\322\111\153\000\000\000\000\056\000\000\000\056\000\000\000'
	# Ethernet: destination, source, type IPv4.
	printf '\002\000\000\000\000\001\002\000\000\000\000\002\010\000'
	# IPv4: 20-byte header, total length 32, TTL 64, UDP, checksum 0 (not verified),
	# 192.0.2.1 -> 198.51.100.1.
	printf '\105\000\000\040\000\000\000\000\100\021\000\000\300\000\002\001\306\063\144\001'
	# UDP: port 40000 -> 8080, length 12, checksum 0; 4 bytes of payload.
	printf '\234\100\037\220\000\014\000\000tw!\n'
} >"$pcap"

report="$dir/report.json"
throttlewatch analyze --format json "$pcap" >"$report"
grep -q '"schema": *"throttlewatch.report/1"' "$report"
# The one packet was read and measured, not skipped.
grep -Eq '"measured": *1([^0-9]|$)' "$report"
echo "test.sh: analyze read the trace"
