#!/usr/bin/env bash
# Instructions per packet of throttlewatch analyze beside libpcap's bare read loop, tcptrace
# and ndpiReader on the same trace, counted by callgrind (stable on a noisy machine; all
# threads together), plus wall-clock times from one run (`-j 2` against `-j 1`: the speed-up). Needs valgrind, gcc, libpcap-dev, tcptrace, libndpi-bin.
#   benches/compare.sh [TRACE]     (default: target/bench/lab-bench.pcap from `lab/lab.py bench`)
set -euo pipefail
cd "$(dirname "$0")/.."
trace=${1:-target/bench/lab-bench.pcap}
[ -f "$trace" ] || { echo "no trace at $trace: run lab/lab.py bench (as root) first" >&2; exit 2; }
out=target/bench
mkdir -p "$out"
cargo build --release --quiet
gcc -O2 -o "$out/pcap_loop" benches/pcap_loop.c -lpcap
packets=$("$out/pcap_loop" "$trace" | cut -d' ' -f1)
echo "trace: $trace, $packets packets"

# name|command
tools=(
  "libpcap read loop|$out/pcap_loop $trace"
  "throttlewatch analyze -j 1 (json)|target/release/throttlewatch analyze -j 1 --format json $trace"
  "throttlewatch analyze -j 2 (json)|target/release/throttlewatch analyze -j 2 --format json $trace"
  "tcptrace -l -r|tcptrace -l -r $trace"
  "ndpiReader|ndpiReader -q -i $trace"
)
printf '%-30s %15s %12s %10s\n' tool instructions instr/packet seconds
for entry in "${tools[@]}"; do
  name=${entry%%|*}
  cmd=${entry#*|}
  start=$(date +%s.%N)
  $cmd > /dev/null 2>&1
  end=$(date +%s.%N)
  instr=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null $cmd 2>&1 >/dev/null \
          | sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
  printf '%-30s %15s %12.0f %10.3f\n' "$name" "$instr" "$(echo "$instr / $packets" | bc -l)" "$(echo "$end - $start" | bc -l)"
done
