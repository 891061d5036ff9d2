#!/usr/bin/env bash
# Record the large trace the performance comparison uses (README, benches/compare.sh): bulk
# downloads, calls and short connections through the lab router, captured on its LAN side
# with a 128-byte snap length as a router capture would be. Not committed (about 120 MB).
#   lab/record-bench.sh [OUT] [MEGABYTES]     (defaults: target/bench/lab-bench.pcap, 800)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../target/bench/lab-bench.pcap}
megabytes=${2:-800}
mkdir -p "$(dirname "$out")"
. "$here/netns.sh"
trap lab_down EXIT
lab_up
lab_exec "$LAB_SERVER" python3 "$here/traffic.py" serve > /dev/null &
sleep 1
lab_exec "$LAB_ROUTER" tcpdump -q -Z root -B 65536 -i "$LAB_LAN_IF" -s 128 -w "$out" 2>/dev/null &
capture=$!
sleep 1
lab_exec "$LAB_CLIENT" python3 "$here/traffic.py" client bench "$megabytes"
sleep 1
# SIGTERM: a background job of a script ignores SIGINT.
kill -TERM "$capture"
wait "$capture" 2>/dev/null || true
echo "wrote $out ($(stat -c %s "$out") bytes)"
