#!/usr/bin/env bash
# Record samples/lab-call.pcap: the trace the README's quick start analyzes. Needs root,
# iproute2, nftables, ethtool, tcpdump and python3. Runs entirely inside its own namespaces.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../samples/lab-call.pcap}
. "$here/netns.sh"
trap lab_down EXIT
lab_up
# Police nothing, but lose 2% of the call's downstream packets, as a lossy radio would: the
# sample shows RTP loss measured from sequence numbers.
lab_exec "$LAB_ROUTER" nft -f - <<NFT
table inet lab {
  chain forward {
    type filter hook forward priority 0; policy accept;
    ip saddr $MSG_ADDR udp sport 3478 numgen random mod 50 == 0 drop
  }
}
NFT
# Realistic round trips: 40 ms to the messenger, 15 ms to the control server.
lab_delay $MSG_ADDR=40 $CTL_ADDR=15
lab_exec "$LAB_SERVER" python3 "$here/traffic.py" serve > /dev/null &
sleep 1
lab_exec "$LAB_ROUTER" tcpdump -q -Z root -i "$LAB_LAN_IF" -s 200 -w "$out" 2>/dev/null &
capture=$!
sleep 1
lab_exec "$LAB_CLIENT" python3 "$here/traffic.py" client sample
sleep 1
# SIGTERM: a background job of a script ignores SIGINT.
kill -TERM "$capture"
wait "$capture" 2>/dev/null || true
echo "wrote $out ($(stat -c %s "$out") bytes)"
