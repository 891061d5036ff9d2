#!/usr/bin/env bash
# Check the artefacts of packaging/release.sh as opkg and a router would see them: every .ipk
# is a gzipped tar of ./debian-binary, ./data.tar.gz and ./control.tar.gz (in that order, as
# OpenWrt's ipkg-build writes them); its control fields are the feed Makefile's, Installed-Size
# is the size of its data; its files, owners and modes are those of Package/throttlewatch/install
# (or luci.mk's for the LuCI app); its postinst and prerm call OpenWrt's default_postinst and
# default_prerm; the binary inside is the release binary of the package's CPU (ELF class,
# endianness, machine, soft-float for MIPS, OpenWrt's musl loader, libraries its Depends
# provide) and prints its version under qemu-user for that CPU with the musl sysroot of
# packaging/cross/musl.sh; and SHA256SUMS matches.
#
#   packaging/release-check.sh [DIR]      (default: target/release-artefacts)
#
# Needs: qemu-user, binutils (readelf), file.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
out=${1:-$repo/target/release-artefacts}

failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}
die() {
    echo "$*" >&2
    exit 1
}
[ -f "$out/SHA256SUMS" ] || die "$out/SHA256SUMS missing: run packaging/release.sh first"
for tool in readelf file; do
    command -v $tool >/dev/null || die "$tool missing: apt-get install binutils file"
done

# The expectations, written out here rather than taken from release.sh: per OpenWrt package
# architecture, the Rust target, `file`'s description of the binary, the dynamic loader of
# OpenWrt's musl and the qemu-user command for such a CPU.
expect() { # ARCH -> target file_pattern loader qemu cpu
    case $1 in
    mips_24kc) echo "mips-unknown-linux-musl|ELF 32-bit MSB pie executable, MIPS, MIPS32 rel2|/lib/ld-musl-mips-sf.so.1|qemu-mips 24Kc" ;;
    mipsel_24kc) echo "mipsel-unknown-linux-musl|ELF 32-bit LSB pie executable, MIPS, MIPS32 rel2|/lib/ld-musl-mipsel-sf.so.1|qemu-mipsel 24Kc" ;;
    arm_cortex-a7_neon-vfpv4) echo "armv7-unknown-linux-musleabihf|ELF 32-bit LSB pie executable, ARM, EABI5|/lib/ld-musl-armhf.so.1|qemu-arm cortex-a7" ;;
    arm_cortex-a9_vfpv3-d16) echo "armv7-unknown-linux-musleabihf|ELF 32-bit LSB pie executable, ARM, EABI5|/lib/ld-musl-armhf.so.1|qemu-arm cortex-a9" ;;
    arm_cortex-a15_neon-vfpv4) echo "armv7-unknown-linux-musleabihf|ELF 32-bit LSB pie executable, ARM, EABI5|/lib/ld-musl-armhf.so.1|qemu-arm cortex-a15" ;;
    aarch64_cortex-a53) echo "aarch64-unknown-linux-musl|ELF 64-bit LSB pie executable, ARM aarch64|/lib/ld-musl-aarch64.so.1|qemu-aarch64 cortex-a53" ;;
    aarch64_cortex-a72) echo "aarch64-unknown-linux-musl|ELF 64-bit LSB pie executable, ARM aarch64|/lib/ld-musl-aarch64.so.1|qemu-aarch64 cortex-a72" ;;
    aarch64_generic) echo "aarch64-unknown-linux-musl|ELF 64-bit LSB pie executable, ARM aarch64|/lib/ld-musl-aarch64.so.1|qemu-aarch64 max" ;;
    *) return 1 ;;
    esac
}

makefile=openwrt/throttlewatch/Makefile
mk() { sed -n "s/^ *$1:=//p" $makefile | head -n 1; }
cargo_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
version=$(mk PKG_VERSION)-$(mk PKG_RELEASE)

(cd "$out" && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS does not match the files"
for file in "$out"/*; do
    case $(basename "$file") in
    SHA256SUMS) ;;
    *) grep -q "  $(basename "$file")\$" "$out/SHA256SUMS" || fail "$(basename "$file") is not in SHA256SUMS" ;;
    esac
done

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# Unpack an ipk into DIR (outer members, control/ and data/) and check the outer format.
unpack() { # IPK DIR
    local ipk=$1 dir=$2 members
    mkdir -p "$dir/control" "$dir/data"
    gzip -t "$ipk" || {
        fail "$ipk: not gzip"
        return 1
    }
    members=$(tar -tzf "$ipk" | tr '\n' ' ')
    [ "$members" = "./debian-binary ./data.tar.gz ./control.tar.gz " ] ||
        fail "$ipk: members $members, not ./debian-binary ./data.tar.gz ./control.tar.gz"
    tar -C "$dir" -xzf "$ipk"
    [ "$(cat "$dir/debian-binary")" = "2.0" ] || fail "$ipk: debian-binary is not 2.0"
    tar -C "$dir/control" -xzf "$dir/control.tar.gz"
    tar -C "$dir/data" -xzf "$dir/data.tar.gz"
}
# The value of a control field.
field() { sed -n "s/^$2: //p" "$1/control/control"; }
# "mode owner path" of every member of a tar.gz, sorted.
listing() { tar -tvzf "$1" | awk '{ print $1, $2, $6 }' | sort; }

check_common() { # IPK DIR PACKAGE ARCH
    local ipk=$1 dir=$2 package=$3 arch=$4 size
    [ "$(basename "$ipk")" = "${package}_${version}_$arch.ipk" ] ||
        fail "$ipk: name is not ${package}_${version}_$arch.ipk"
    [ "$(field "$dir" Package)" = "$package" ] || fail "$ipk: Package is not $package"
    [ "$(field "$dir" Version)" = "$version" ] || fail "$ipk: Version is not $version"
    [ "$(field "$dir" Architecture)" = "$arch" ] || fail "$ipk: Architecture is not $arch"
    size=$(zcat "$dir/data.tar.gz" | wc -c)
    [ "$(field "$dir" Installed-Size)" = "$size" ] ||
        fail "$ipk: Installed-Size $(field "$dir" Installed-Size), not the data's $size bytes"
    grep -q '^Description:  [^ ]' "$dir/control/control" || fail "$ipk: no Description"
    grep -q "^License: MIT OR Apache-2.0$" "$dir/control/control" || fail "$ipk: License"
    # The control files: root's, postinst and prerm executable; they run OpenWrt's defaults.
    while read -r mode owner path; do
        [ "$owner" = "0/0" ] || fail "$ipk: control member $path owned by $owner"
        case $path in
        ./control | ./conffiles) [ "$mode" = "-rw-r--r--" ] || fail "$ipk: $path mode $mode" ;;
        ./postinst | ./prerm | ./postinst-pkg) [ "$mode" = "-rwxr-xr-x" ] || fail "$ipk: $path mode $mode" ;;
        *) fail "$ipk: unexpected control member $path" ;;
        esac
    done < <(listing "$dir/control.tar.gz" | grep -v ' ./$')
    # With a stub of OpenWrt's /lib/functions.sh, the scripts call its defaults with the
    # script's own path, as opkg runs them.
    mkdir -p "$scratch/root/lib"
    printf '%s\n' 'default_postinst() { echo "default_postinst $*"; }' \
        'default_prerm() { echo "default_prerm $*"; }' >"$scratch/root/lib/functions.sh"
    [ "$(IPKG_INSTROOT=$scratch/root sh "$dir/control/postinst" 2>&1)" = "default_postinst $dir/control/postinst" ] ||
        fail "$ipk: postinst does not run default_postinst"
    [ "$(IPKG_INSTROOT=$scratch/root IPKG_NO_SCRIPT=1 sh "$dir/control/postinst" 2>&1)" = "" ] ||
        fail "$ipk: postinst runs under IPKG_NO_SCRIPT=1"
    [ "$(IPKG_INSTROOT=$scratch/root sh "$dir/control/prerm" 2>&1)" = "default_prerm $dir/control/prerm" ] ||
        fail "$ipk: prerm does not run default_prerm"
    rm -rf "$scratch/root"
}

ipks=0
archs_seen=" "
for ipk in "$out"/throttlewatch_*.ipk; do
    [ -e "$ipk" ] || die "no throttlewatch_*.ipk in $out"
    ipks=$((ipks + 1))
    arch=$(basename "$ipk" .ipk)
    arch=${arch##*_"$version"_}
    archs_seen="$archs_seen$arch "
    expected=$(expect "$arch") || {
        fail "$ipk: unknown package architecture $arch"
        continue
    }
    IFS='|' read -r target pattern loader qemu <<<"$expected"
    dir=$scratch/$arch
    unpack "$ipk" "$dir" || continue
    check_common "$ipk" "$dir" throttlewatch "$arch"
    [ "$(field "$dir" Depends)" = "libc, libpcap1" ] || fail "$ipk: Depends is not libc, libpcap1"
    [ "$(field "$dir" Section)" = "net" ] || fail "$ipk: Section is not net"
    [ "$(field "$dir" Require-User)" = "$(mk USERID)" ] ||
        fail "$ipk: Require-User is not the Makefile's USERID $(mk USERID)"
    [ "$(cat "$dir/control/conffiles")" = "/etc/config/throttlewatch" ] ||
        fail "$ipk: conffiles is not /etc/config/throttlewatch"
    [ "$(listing "$dir/control.tar.gz" | awk '{ print $3 }' | sort | tr '\n' ' ')" = "./ ./conffiles ./control ./postinst ./prerm " ] ||
        fail "$ipk: control members are not conffiles, control, postinst, prerm"
    # The files of Package/throttlewatch/install, root's, with install's modes.
    expected_listing=$(printf '%s\n' \
        'drwxr-xr-x 0/0 ./' 'drwxr-xr-x 0/0 ./etc/' 'drwxr-xr-x 0/0 ./etc/config/' \
        '-rw------- 0/0 ./etc/config/throttlewatch' 'drwxr-xr-x 0/0 ./etc/init.d/' \
        '-rwxr-xr-x 0/0 ./etc/init.d/throttlewatch' 'drwxr-xr-x 0/0 ./usr/' \
        'drwxr-xr-x 0/0 ./usr/bin/' '-rwxr-xr-x 0/0 ./usr/bin/throttlewatch' | sort)
    [ "$(listing "$dir/data.tar.gz")" = "$expected_listing" ] || {
        diff <(echo "$expected_listing") <(listing "$dir/data.tar.gz") >&2 || true
        fail "$ipk: data files, owners or modes differ from Package/throttlewatch/install"
    }
    cmp -s "$dir/data/etc/config/throttlewatch" openwrt/throttlewatch/files/throttlewatch.config ||
        fail "$ipk: /etc/config/throttlewatch is not files/throttlewatch.config"
    cmp -s "$dir/data/etc/init.d/throttlewatch" openwrt/throttlewatch/files/throttlewatch.init ||
        fail "$ipk: /etc/init.d/throttlewatch is not files/throttlewatch.init"
    # The binary: the release binary of its target, for the package's CPU.
    binary=$dir/data/usr/bin/throttlewatch
    cmp -s "$binary" "$out/throttlewatch-$cargo_version-$target" ||
        fail "$ipk: /usr/bin/throttlewatch is not throttlewatch-$cargo_version-$target"
    case $(file -b "$binary") in
    "$pattern"*", dynamically linked, interpreter $loader, stripped") ;;
    *) fail "$ipk: the binary is $(file -b "$binary"), not $pattern* with interpreter $loader" ;;
    esac
    [ "$(readelf -lW "$binary" | sed -n 's/.*Requesting program interpreter: \(.*\)]$/\1/p')" = "$loader" ] ||
        fail "$ipk: interpreter is not $loader"
    case $arch in
    mips*) readelf -A "$binary" | grep 'FP ABI: Soft float' >/dev/null || fail "$ipk: not soft-float" ;;
    esac
    needed=$(readelf -dW "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p' | sort | tr '\n' ' ')
    # libc.so (musl's), libpcap.so.1 (libpcap1) and libgcc_s.so.1 (libgcc1, which libc
    # depends on) only: what the Depends line brings.
    case $needed in
    "libc.so libpcap.so.1 " | "libc.so libgcc_s.so.1 libpcap.so.1 ") ;;
    *) fail "$ipk: the binary needs $needed, not only libc.so, libpcap.so.1 and libgcc_s.so.1" ;;
    esac
    read -r qemu_bin cpu <<<"$qemu"
    sysroot=$repo/target/cross/musl/$target/sysroot
    if [ -d "$sysroot" ]; then
        got=$("$qemu_bin" -cpu "$cpu" -L "$sysroot" "$binary" --version 2>&1) || true
        [ "$got" = "throttlewatch $cargo_version" ] ||
            fail "$ipk: under $qemu_bin -cpu $cpu the binary printed '$got', not 'throttlewatch $cargo_version'"
    else
        fail "$sysroot missing (packaging/cross/musl.sh $target): cannot run the binary"
    fi
    echo "$(basename "$ipk"): $(field "$dir" Installed-Size) bytes installed, runs under $qemu_bin -cpu $cpu"
done

# Every binary artefact has its packages, and every router target was released.
for target in mips-unknown-linux-musl mipsel-unknown-linux-musl armv7-unknown-linux-musleabihf \
    aarch64-unknown-linux-musl; do
    [ -x "$out/throttlewatch-$cargo_version-$target" ] || fail "no binary for $target"
done
for arch in mips_24kc mipsel_24kc arm_cortex-a7_neon-vfpv4 arm_cortex-a9_vfpv3-d16 \
    arm_cortex-a15_neon-vfpv4 aarch64_cortex-a53 aarch64_cortex-a72 aarch64_generic; do
    case $archs_seen in
    *" $arch "*) ;;
    *) fail "no package for $arch" ;;
    esac
done

# The LuCI app: arch all, luci.mk's files (htdocs under /www, root as it is, 0644 files).
ipk=$out/luci-app-throttlewatch_${version}_all.ipk
if [ -f "$ipk" ]; then
    dir=$scratch/luci
    if unpack "$ipk" "$dir"; then
        check_common "$ipk" "$dir" luci-app-throttlewatch all
        [ "$(field "$dir" Depends)" = "libc, throttlewatch, luci-base" ] ||
            fail "$ipk: Depends is not libc, throttlewatch, luci-base"
        grep -q 'killall -HUP rpcd' "$dir/control/postinst-pkg" ||
            fail "$ipk: postinst-pkg does not reload rpcd"
        expected_files=$(
            cd openwrt/luci-app-throttlewatch
            { (cd htdocs && find . -type f | sed 's|^\./|./www/|') && (cd root && find . -type f); } | sort
        )
        [ "$(cd "$dir/data" && find . -type f | sort)" = "$expected_files" ] ||
            fail "$ipk: files differ from htdocs/ (under /www) and root/"
        while read -r path; do
            source=openwrt/luci-app-throttlewatch/root/$path
            case $path in ./www/*) source=openwrt/luci-app-throttlewatch/htdocs/${path#./www/} ;; esac
            cmp -s "$dir/data/$path" "$source" || fail "$ipk: $path differs from $source"
        done <<<"$expected_files"
        while read -r mode owner path; do
            case $mode in
            d*) [ "$mode $owner" = "drwxr-xr-x 0/0" ] || fail "$ipk: $path: $mode $owner" ;;
            *) [ "$mode $owner" = "-rw-r--r-- 0/0" ] || fail "$ipk: $path: $mode $owner" ;;
            esac
        done < <(listing "$dir/data.tar.gz")
        echo "$(basename "$ipk"): $(field "$dir" Installed-Size) bytes installed"
    fi
else
    fail "$ipk missing"
fi

[ $failures -eq 0 ] || die "$failures check(s) failed on the release artefacts in $out"
echo "release artefacts in $out: $ipks throttlewatch packages and the LuCI app's, all as expected"
