# The three-namespace lab (DESIGN §7): client — router — server. Source this file, then call
# lab_up / lab_down. Every address lives inside namespaces this script creates; nothing here
# can reach any other network.
#
#   client  192.168.50.2/24 ── lan ── 192.168.50.1  router  192.0.2.1/24 ── wan ── 192.0.2.2  server
#                                                                       198.51.100.10 (messenger)
#                                                                       203.0.113.10  (control)
#                                                                       203.0.113.53  (DNS)
# The router forwards; captures are taken on its LAN interface, as on a real router.

LAB=${LAB:-tw$$}
LAB_CLIENT=$LAB-c
LAB_ROUTER=$LAB-r
LAB_SERVER=$LAB-s
LAB_LAN_IF=lan0          # the router's LAN interface (capture here)
MSG_ADDR=198.51.100.10
CTL_ADDR=203.0.113.10
DNS_ADDR=203.0.113.53
CLIENT_ADDR=192.168.50.2

lab_exec() { ip netns exec "$@"; }

lab_up() {
    ip netns add "$LAB_CLIENT"
    ip netns add "$LAB_ROUTER"
    ip netns add "$LAB_SERVER"
    ip link add lan0 netns "$LAB_ROUTER" type veth peer name eth0 netns "$LAB_CLIENT"
    ip link add wan0 netns "$LAB_ROUTER" type veth peer name eth0 netns "$LAB_SERVER"
    for ns in "$LAB_CLIENT" "$LAB_ROUTER" "$LAB_SERVER"; do
        lab_exec "$ns" ip link set lo up
    done
    lab_exec "$LAB_CLIENT" ip addr add $CLIENT_ADDR/24 dev eth0
    lab_exec "$LAB_CLIENT" ip link set eth0 up
    lab_exec "$LAB_CLIENT" ip route add default via 192.168.50.1
    lab_exec "$LAB_ROUTER" ip addr add 192.168.50.1/24 dev lan0
    lab_exec "$LAB_ROUTER" ip addr add 192.0.2.1/24 dev wan0
    lab_exec "$LAB_ROUTER" ip link set lan0 up
    lab_exec "$LAB_ROUTER" ip link set wan0 up
    lab_exec "$LAB_ROUTER" ip route add $MSG_ADDR/32 via 192.0.2.2
    lab_exec "$LAB_ROUTER" ip route add $CTL_ADDR/32 via 192.0.2.2
    lab_exec "$LAB_ROUTER" ip route add $DNS_ADDR/32 via 192.0.2.2
    lab_exec "$LAB_ROUTER" sysctl -qw net.ipv4.ip_forward=1
    lab_exec "$LAB_ROUTER" sysctl -qw net.netfilter.nf_conntrack_acct=1 2>/dev/null || true
    lab_exec "$LAB_SERVER" ip addr add 192.0.2.2/24 dev eth0
    for a in $MSG_ADDR $CTL_ADDR $DNS_ADDR; do
        lab_exec "$LAB_SERVER" ip addr add $a/32 dev lo
    done
    lab_exec "$LAB_SERVER" ip link set eth0 up
    lab_exec "$LAB_SERVER" ip route add 192.168.50.0/24 via 192.0.2.1
    # Routers see MTU-sized packets, not 64 KB offload "segments".
    for pair in "$LAB_CLIENT eth0" "$LAB_ROUTER lan0" "$LAB_ROUTER wan0" "$LAB_SERVER eth0"; do
        set -- $pair
        lab_exec "$1" ethtool -K "$2" tso off gso off gro off >/dev/null 2>&1 || true
    done
}

# Add one-way delay towards server addresses through a userspace delay line (the kernel has no
# netem): lab_delay ADDR=MS... Packets for those addresses enter the TUN device dly0; what the
# delay line writes back is forwarded to the server by a policy route.
lab_delay() {
    lab_exec "$LAB_ROUTER" python3 "$(dirname "${BASH_SOURCE[0]}")/traffic.py" delay dly0 "$@" > /dev/null &
    for _ in $(seq 50); do
        lab_exec "$LAB_ROUTER" ip link show dly0 >/dev/null 2>&1 && break
        sleep 0.1
    done
    lab_exec "$LAB_ROUTER" ip link set dly0 up
    lab_exec "$LAB_ROUTER" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.dly0.rp_filter=0
    lab_exec "$LAB_ROUTER" ip route add 192.0.2.0/24 dev wan0 table 100 2>/dev/null || true
    lab_exec "$LAB_ROUTER" ip rule add iif dly0 table 100
    for rule in "$@"; do
        lab_exec "$LAB_ROUTER" ip route add "${rule%%=*}/32" via 192.0.2.2 dev wan0 table 100
        lab_exec "$LAB_ROUTER" ip route replace "${rule%%=*}/32" dev dly0
    done
}

lab_down() {
    for ns in "$LAB_CLIENT" "$LAB_ROUTER" "$LAB_SERVER"; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
    done
}
