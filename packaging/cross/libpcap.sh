#!/usr/bin/env bash
# Cross-compile libpcap for a target Debian has no libpcap for (32-bit MIPS: big-endian mips is
# no Debian architecture, and mipsel's multiarch libpcap does not install beside amd64's), as
# OpenWrt builds it for its targets: upstream's source (the .orig tarball of Debian's source
# package, `apt-get source libpcap`, which needs a deb-src line), Linux capture only, no D-Bus,
# RDMA, USB, Bluetooth, netmap or remote capture.
#
#   packaging/cross/libpcap.sh TARGET      (mips-unknown-linux-gnu, mipsel-unknown-linux-gnu)
#
# Installs into target/cross/libpcap/TARGET (lib/libpcap.so.1, as OpenWrt's libpcap package).
# Needs: gcc-<triple>, flex, bison, make, and deb-src in the apt sources.
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${1:?usage: $0 TARGET}
gnu=${target%%-*}-linux-gnu
base=$PWD/target/cross/libpcap
prefix=$base/$target

mkdir -p "$base/src"
orig=$(ls "$base"/src/libpcap_*.orig.tar.gz 2>/dev/null | tail -n 1 || true)
if [ -z "$orig" ]; then
    (cd "$base/src" && apt-get source --download-only libpcap)
    orig=$(ls "$base"/src/libpcap_*.orig.tar.gz | tail -n 1)
fi
build=$base/build-$target
rm -rf "$build" "$prefix"
mkdir -p "$build"
tar -C "$build" --strip-components=1 -xzf "$orig"
cd "$build"
./configure --host="$gnu" --prefix="$prefix" --with-pcap=linux --enable-shared \
    --disable-dbus --disable-rdma --disable-bluetooth --disable-usb --disable-netmap \
    --disable-remote --without-libnl --without-dag --without-septel --without-snf \
    --without-turbocap >configure.log
make -j"$(nproc)" >make.log
make install >install.log
rm -f "$prefix"/lib/libpcap.a
echo "libpcap for $target: $(readlink -f "$prefix/lib/libpcap.so")"
