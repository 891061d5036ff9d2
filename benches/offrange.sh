#!/bin/bash
# Lab runs with parameters outside what the lab draws, or at its edge (README, Accuracy:
# "Parameters outside the lab's draws"). Each setting twice, offloads on in the second.
# Root, the lab's requirements; about 40 s a run.
#   benches/offrange.sh DIR [FIRST]      then: benches/accuracy.py report --dir DIR
set -euo pipefail
dir=${1:?usage: benches/offrange.sh DIR [FIRST]}
n=${2:-1600}
cd "$(dirname "$0")/.."
run() {
    local scenario=$1 sets=()
    shift
    for s in "$@"; do sets+=(--set "$s"); done
    python3 benches/accuracy.py record --first "$n" --runs 2 --only "$scenario" --dir "$dir" "${sets[@]}"
    n=$((n + 2))
}
run police rate_kbit=64 burst_kb=4
run police rate_kbit=5000 download_kb=3000
run sni-police rate_kbit=300 burst_kb=30
run aggregate-police rate_kbit=2500
run random-loss loss_pct=15.0 direction=both
run random-loss loss_pct=2.0 direction=down
run freeze after_bytes=8000
run freeze after_bytes=70000
run freeze-some after_bytes=12000
run packets-then-drop packets=3
run packets-then-drop packets=12
run police rtt_ms=250 ctl_rtt_ms=200 rate_kbit=500
run shape rate_kbit=300
run shape rate_kbit=5000 download_kb=3000
run call-partial-loss loss_pct=3.0 direction=down
run call-partial-loss loss_pct=40.0 direction=both
run media-die packets=2
run media-die packets=10
run rst-midflow after_bytes=5000
run rst-midflow after_bytes=200000
run addr-shaping slow_rtt_ms=200 rate_kbit=3000
run handshake-stall rtt_ms=250
run serverhello-drop hello_ms=500
run call-police rate_kbit=64
run oneway-cut after_s=3
run congestion rate_kbit=2000 queue_packets=200
run wifi-loss loss_pct=3.0
run ctl-distance rtt_ms=150
run slow-server server_kbit=200 think_ms=1000
run cross-traffic rate_kbit=3000 cross_kb=3000
run clean rtt_ms=5 ctl_rtt_ms=5
