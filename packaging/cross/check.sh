#!/usr/bin/env bash
# Run a router build (packaging/cross/build.sh) under qemu-user and compare: `analyze --format
# json` on every trace in samples/ must give, byte for byte, the JSON of the reference binary
# (a host build of the same features), and the binary must be within the size budget.
#
#   packaging/cross/check.sh TARGET [--no-pcap] REFERENCE
#
# Also the error paths (missing, garbage and cut traces). TARGET: a target of build.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."

die() {
    echo "$*" >&2
    exit 1
}
usage() {
    echo "usage: $0 TARGET [--no-pcap] REFERENCE" >&2
    exit 2
}
[ $# -ge 2 ] || usage
target=$1
suffix=
if [ "$2" = "--no-pcap" ]; then
    suffix=-nopcap
    shift
fi
[ $# -eq 2 ] || usage
reference=$2
binary=target/cross/$target$suffix/bin/throttlewatch
[ -x "$binary" ] || die "$binary missing: packaging/cross/build.sh $target ${suffix:+--no-pcap}"

# Size budget of the router binary (as .ci/run for the host): 1.5 MB, decimal.
budget_bytes=1500000
size_bytes=$(stat -c %s "$binary")
echo "$target$suffix: $size_bytes bytes (budget $budget_bytes bytes)"
[ "$size_bytes" -le "$budget_bytes" ] ||
    die "$binary is $size_bytes bytes, over its budget of $budget_bytes bytes (1.5 MB)"

# qemu-user for the target's CPU (an FPU-less 24Kc for the soft-float MIPS builds: a floating
# point instruction would stop the run), with the musl sysroot as the guest's root: its
# dynamic loader (the binary's interpreter), libc, libgcc_s and libpcap.
case $target in
mips-unknown-linux-musl) run=(qemu-mips -cpu 24Kc) ;;
mipsel-unknown-linux-musl) run=(qemu-mipsel -cpu 24Kc) ;;
armv7-unknown-linux-musleabihf) run=(qemu-arm -cpu cortex-a7) ;;
aarch64-unknown-linux-musl) run=(qemu-aarch64 -cpu cortex-a53) ;;
*) usage ;;
esac
sysroot=$PWD/target/cross/musl/$target/sysroot
[ -d "$sysroot" ] || die "$sysroot missing: packaging/cross/musl.sh $target"
run+=(-L "$sysroot")

"${run[@]}" "$binary" --version
traces=0
started=$(date +%s)
while IFS= read -r trace; do
    cmp <("${run[@]}" "$binary" analyze --format json "$trace") \
        <("$reference" analyze --format json "$trace") ||
        die "$trace: $target$suffix under qemu reports otherwise than $reference"
    traces=$((traces + 1))
done < <(find samples -name '*.pcap' -o -name '*.pcapng' | sort)
[ $traces -gt 0 ] || die "no traces in samples/"

# The error paths too: a missing file, a file that is no trace and a cut trace give the same
# output, messages and exit status.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
printf 'not a trace\n' >"$scratch/garbage.pcap"
head -c 3000 samples/lab/clean.pcap >"$scratch/cut.pcap"
for input in "$scratch/missing.pcap" "$scratch/garbage.pcap" "$scratch/cut.pcap"; do
    guest=$(
        "${run[@]}" "$binary" analyze --format json "$input" 2>&1
        echo "exit status $?"
    )
    host=$(
        "$reference" analyze --format json "$input" 2>&1
        echo "exit status $?"
    )
    if [ "$guest" != "$host" ]; then
        diff <(echo "$host") <(echo "$guest") >&2
        die "$input: $target$suffix differs"
    fi
done
echo "$target$suffix under ${run[0]}: the same JSON as $reference on $traces traces and the same errors ($(($(date +%s) - started)) s)"
