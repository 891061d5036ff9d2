#!/usr/bin/env bash
# Cross-compile libpcap for a router CPU against its musl sysroot (packaging/cross/musl.sh), as
# OpenWrt builds its libpcap package: upstream's source (the .orig tarball of Debian's source
# package, `apt-get source libpcap`, which needs a deb-src line), shared, Linux capture only,
# no D-Bus, RDMA, USB, Bluetooth, netmap or remote capture.
#
#   packaging/cross/libpcap.sh TARGET      (a target of packaging/cross/musl.sh)
#
# Installs into the sysroot's /usr (usr/lib/libpcap.so.1, where OpenWrt's libpcap1 package
# puts it; the headers and the libpcap.so link for the build). Builds the sysroot first if
# needed. Needs: gcc-<triple>, flex, bison, make, and deb-src in the apt sources.
set -euo pipefail
# die, quietly
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/../.."
target=${1:?usage: $0 TARGET}
packaging/cross/musl.sh "$target" >/dev/null
musl=$PWD/target/cross/musl/$target
# CC (the gcc driver for the sysroot) and HOST (the GNU triple).
. "$musl/env"
base=$PWD/target/cross/libpcap

mkdir -p "$base/src"
orig=$(ls "$base"/src/libpcap_*.orig.tar.gz 2>/dev/null | tail -n 1 || true)
if [ -z "$orig" ]; then
    (cd "$base/src" && apt-get source --download-only libpcap >/dev/null) ||
        die "apt-get source libpcap failed: a deb-src line is needed in the apt sources"
    orig=$(ls "$base"/src/libpcap_*.orig.tar.gz | tail -n 1)
fi
build=$base/build-$target
rm -rf "$build"
mkdir -p "$build"
tar -C "$build" --strip-components=1 -xzf "$orig"
cd "$build"
quietly configure.log env CC="$CC" CFLAGS=-Os ./configure --host="$HOST" --prefix=/usr \
    --with-pcap=linux --enable-shared --disable-dbus --disable-rdma --disable-bluetooth \
    --disable-usb --disable-netmap --disable-remote --without-libnl --without-dag \
    --without-septel --without-snf --without-turbocap
quietly make.log make -j"$(nproc)"
quietly install.log make install DESTDIR="$musl/sysroot"
rm -f "$musl"/sysroot/usr/lib/libpcap.a
cd / && rm -rf "$build"
echo "libpcap for $target: $(readlink -f "$musl/sysroot/usr/lib/libpcap.so")"
