#!/usr/bin/env bash
# Run a router build (packaging/cross/build.sh) under qemu-user and compare: `analyze --format
# json` on every trace in samples/ must give, byte for byte, the JSON of the reference binary
# (a host build of the same features), and the binary must be within the size budget.
#
#   packaging/cross/check.sh TARGET [--no-pcap] REFERENCE
#
# Also the error paths (missing, garbage and cut traces). The runner is the target's `runner` in .cargo/config.toml (qemu-ARCH -L SYSROOT); a
# cross-compiled libpcap (packaging/cross/libpcap.sh) is found through LD_LIBRARY_PATH, which
# qemu passes to the guest's dynamic loader.
set -euo pipefail
cd "$(dirname "$0")/../.."

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
[ -x "$binary" ] || { echo "$binary missing: packaging/cross/build.sh $target ${suffix:+--no-pcap}" >&2; exit 1; }

# Size budget of the router binary (as .ci/run for the host): 1.5 MB, decimal.
budget_bytes=1500000
size_bytes=$(stat -c %s "$binary")
echo "$target$suffix: $size_bytes bytes (budget $budget_bytes bytes)"
if [ "$size_bytes" -gt "$budget_bytes" ]; then
    echo "$binary is $size_bytes bytes, over its budget of $budget_bytes bytes (1.5 MB)" >&2
    exit 1
fi

runner=$(awk -v section="[target.$target]" \
    '$0 == section { on = 1; next } /^\[/ { on = 0 }
     on && /^runner *=/ { sub(/^runner *= *"/, ""); sub(/"$/, ""); print }' .cargo/config.toml)
[ -n "$runner" ] || { echo "no runner for $target in .cargo/config.toml" >&2; exit 1; }
read -r -a run <<<"$runner"
pcap_lib=$PWD/target/cross/libpcap/$target/lib
[ -d "$pcap_lib" ] && run+=(-E "LD_LIBRARY_PATH=$pcap_lib")

"${run[@]}" "$binary" --version
traces=0
started=$(date +%s)
while IFS= read -r trace; do
    cmp <("${run[@]}" "$binary" analyze --format json "$trace") \
        <("$reference" analyze --format json "$trace") ||
        { echo "$trace: $target$suffix under qemu reports otherwise than $reference" >&2; exit 1; }
    traces=$((traces + 1))
done < <(find samples -name '*.pcap' -o -name '*.pcapng' | sort)
[ $traces -gt 0 ] || { echo "no traces in samples/" >&2; exit 1; }

# The error paths too: a missing file, a file that is no trace and a cut trace give the same
# output, messages and exit status.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
printf 'not a trace\n' >"$scratch/garbage.pcap"
head -c 3000 samples/lab/clean.pcap >"$scratch/cut.pcap"
for input in "$scratch/missing.pcap" "$scratch/garbage.pcap" "$scratch/cut.pcap"; do
    guest=$("${run[@]}" "$binary" analyze --format json "$input" 2>&1; echo "exit status $?")
    host=$("$reference" analyze --format json "$input" 2>&1; echo "exit status $?")
    [ "$guest" = "$host" ] ||
        { diff <(echo "$host") <(echo "$guest") >&2; echo "$input: $target$suffix differs" >&2; exit 1; }
done
echo "$target$suffix under ${run[0]}: the same JSON as $reference on $traces traces and the same errors ($(($(date +%s) - started)) s)"
