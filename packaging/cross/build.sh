#!/usr/bin/env bash
# Build the release binary for a router CPU the way the OpenWrt package is built (the packages
# feed's lang/rust/rust-package.mk and rust-values.mk, with openwrt/throttlewatch/Makefile's
# additions), against an OpenWrt-like musl sysroot (packaging/cross/musl.sh) in place of an
# OpenWrt SDK.
#
#   packaging/cross/build.sh TARGET [--no-pcap]
#
# TARGET: mips-unknown-linux-musl, mipsel-unknown-linux-musl, armv7-unknown-linux-musleabihf,
# aarch64-unknown-linux-musl. Writes target/cross/TARGET[-nopcap]/bin/throttlewatch (cargo
# install --root) and prints its size. The features are the OpenWrt package's (its
# Build/Compile's cargo arguments: `pcap`, not `html`); --no-pcap builds without any (analyze
# only, no live capture).
#
# What OpenWrt does, and what differs here:
# - cargo install -v --profile release --root DIR --path . --locked, with CARGO_BUILD_TARGET
#   and the profile settings rust-values.mk exports (CARGO_PROFILE_RELEASE_*: opt-level z, LTO,
#   one codegen unit, overflow checks on, panic=unwind), the linker, TARGET_CC and
#   RUSTFLAGS=-Ctarget-feature=-crt-static (dynamic linking against the target's musl);
#   openwrt/throttlewatch/Makefile then appends its own variables (libpcap's location and
#   version, and panic=abort with overflow checks off, so that the package is the release
#   profile the project tests). This script reads that block from the Makefile, so the two
#   cannot drift apart.
# - Triples: rust-values.mk maps OpenWrt's GNU name to Rust's by replacing "openwrt" with
#   "unknown" (armv7 and "hf" added for ARMv7 with an FPU):
#     ath79 (mips_24kc)        mips-openwrt-linux-musl       -> mips-unknown-linux-musl
#     ramips (mipsel_24kc)     mipsel-openwrt-linux-musl     -> mipsel-unknown-linux-musl
#     ipq40xx, mvebu           arm-openwrt-linux-muslgnueabi -> armv7-unknown-linux-musleabihf
#     filogic, mediatek        aarch64-openwrt-linux-musl    -> aarch64-unknown-linux-musl
# - The linker and TARGET_CC: OpenWrt's gcc for the target; here Debian's cross gcc driven
#   against the musl sysroot (musl.sh: OpenWrt's dynamic loaders, soft-float for MIPS), and
#   libpcap built on it (libpcap.sh), linked dynamically as OpenWrt's `+libpcap`.
# - std: OpenWrt's Rust compiles it for each target on stable Rust. Here the MIPS targets
#   (tier 3 in rustup) compile it with nightly -Zbuild-std and -Cpanic=immediate-abort, which
#   stable cannot do (README, Router CPUs); armv7-unknown-linux-musleabihf with nightly
#   -Zbuild-std too (rustup's std for it is not reachable here), with panic=abort as the
#   Makefile sets; aarch64 uses rustup's std on stable. The MIPS builds are linked for 4 KiB
#   pages (below), which OpenWrt's build does not ask for: its MIPS binary of this version
#   would be 64 KiB of padding larger in the file, the same in memory.
# - No C is compiled by the crates (so OpenWrt's TARGET_CFLAGS do not matter), CARGO_HOME is
#   the user's.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

die() {
    echo "$*" >&2
    exit 1
}
usage() {
    echo "usage: $0 TARGET [--no-pcap]" >&2
    exit 2
}
[ $# -ge 1 ] || usage
target=$1
pcap=yes
[ "${2-}" = "--no-pcap" ] && pcap=no
[ $# -le 2 ] || usage

toolchain=stable
build_std=()
rustflags=(-Ctarget-feature=-crt-static)
case $target in
mips-unknown-linux-musl | mipsel-unknown-linux-musl)
    toolchain=nightly
    build_std=(-Zbuild-std=std,panic_abort)
    # MIPS code is larger: with the panic messages, 1,839,332 bytes for mips (glibc), over the
    # budget of 1.5 MB. A panic (a bug) aborts without its message; the output is otherwise
    # the same (packaging/cross/check.sh).
    rustflags+=(-Zunstable-options -Cpanic=immediate-abort)
    # GNU ld aligns MIPS segments for pages of up to 64 KiB, and keeps a segment's file
    # offset congruent with its address: the file jumps by 64 KiB of zeros whenever the code
    # crosses such a step (1,509,796 bytes instead of 1,452,452 for mips once it did). The
    # MIPS cores of OpenWrt's routers (24Kc, 74Kc, 1004Kc) run kernels with 4 KiB pages:
    # align for those.
    rustflags+=(-Clink-arg=-Wl,-z,max-page-size=4096)
    ;;
armv7-unknown-linux-musleabihf)
    # rustup offers no std for it here (OpenWrt's Rust compiles one): nightly compiles it,
    # with the panic messages (panic=abort, as the Makefile sets).
    toolchain=nightly
    build_std=(-Zbuild-std=std,panic_abort)
    ;;
aarch64-unknown-linux-musl) ;;
*) usage ;;
esac

# The musl sysroot and its gcc driver (OpenWrt's TARGET_CC), and libpcap built against it.
packaging/cross/musl.sh "$target"
cc=$repo/target/cross/musl/$target/bin/cc
pcap_lib=$repo/target/cross/musl/$target/sysroot/usr/lib

root=$repo/target/cross/$target
# openwrt/throttlewatch/Makefile's Build/Compile: `$(call Build/Compile/Cargo,,ARGS)`.
read -r -a features < <(sed -n 's|^\t$(call Build/Compile/Cargo,,\(.*\))$|\1|p' openwrt/throttlewatch/Makefile)
[ ${#features[@]} -gt 0 ] || die "no Build/Compile/Cargo arguments in openwrt/throttlewatch/Makefile"
if [ $pcap = no ]; then
    root=$root-nopcap
    features=(--no-default-features)
elif [ ! -e "$pcap_lib/libpcap.so" ]; then
    packaging/cross/libpcap.sh "$target"
fi

# openwrt/throttlewatch/Makefile's `CARGO_PKG_VARS+=` block, one VAR=value per line, with the
# staging directory's library folder replaced by this target's libpcap.
mapfile -t package_vars < <(
    awk '/^CARGO_PKG_VARS\+=/ { on = 1; next }
        on { line = $0; sub(/^[ \t]+/, "", line); more = sub(/[ \t]*\\$/, "", line)
             if (line != "") print line; if (!more) on = 0 }' openwrt/throttlewatch/Makefile |
        sed "s|\$(STAGING_DIR)/usr/lib|$pcap_lib|"
)
[ ${#package_vars[@]} -gt 0 ] || die "no CARGO_PKG_VARS+= in openwrt/throttlewatch/Makefile"

target_var=$(echo "$target" | tr 'a-z-' 'A-Z_')
started=$(date +%s)
# rust-values.mk's CARGO_PKG_CONFIG_VARS, then rust-package.mk's CC, then the Makefile's.
env \
    CARGO_BUILD_TARGET="$target" \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
    CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=false \
    CARGO_PROFILE_RELEASE_LTO=true \
    CARGO_PROFILE_RELEASE_OPT_LEVEL=z \
    CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true \
    CARGO_PROFILE_RELEASE_PANIC=unwind \
    CARGO_PROFILE_RELEASE_RPATH=false \
    "CARGO_TARGET_${target_var}_LINKER=$cc" \
    RUSTFLAGS="${rustflags[*]}" \
    TARGET_CC="$cc" \
    CC=cc \
    "${package_vars[@]}" \
    cargo "+$toolchain" "${build_std[@]}" install -v --force \
    --profile release --root "$root" --path . --locked "${features[@]}"
elapsed=$(($(date +%s) - started))

binary=$root/bin/throttlewatch
echo "$target$([ $pcap = no ] && echo ' (no pcap)'): $(stat -c %s "$binary") bytes, built in ${elapsed} s"
