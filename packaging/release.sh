#!/usr/bin/env bash
# Release artefacts for OpenWrt routers: per router CPU the stripped binary and its OpenWrt
# packages, the LuCI app's package, and their checksums.
#
#   packaging/release.sh [TARGET...]
#
# TARGET: targets of packaging/cross/build.sh (default: all four). Writes, into
# target/release-artefacts/ (emptied first):
#   throttlewatch-VERSION-TARGET                   the stripped binary (dynamically linked
#                                                  against musl and libpcap, as OpenWrt's)
#   throttlewatch_VERSION-RELEASE_ARCH.ipk         per OpenWrt package architecture of the
#                                                  target (the same binary for each)
#   luci-app-throttlewatch_VERSION-RELEASE_all.ipk
#   BUILDINFO                                      the commit, toolchains and libraries
#   SHA256SUMS                                     of all the above (`sha256sum -c SHA256SUMS`)
# packaging/release-check.sh checks them.
#
# The .ipk files are what an OpenWrt 23.05 or 24.10 SDK would make of the feed's Makefiles
# (include/package-ipkg.mk and scripts/ipkg-build): a gzipped tar of ./debian-binary (2.0),
# ./data.tar.gz (the files of Package/throttlewatch/install, owned by root, with install's
# modes: 0755 programs, 0600 conffiles) and ./control.tar.gz (control with the Makefile's
# fields, conffiles, and the postinst and prerm that run OpenWrt's default_postinst and
# default_prerm: these create the USERID user from the control's Require-User and enable the
# procd service). Dates are the commit's (SOURCE_DATE_EPOCH), so a rebuild gives the same
# packages for the same binaries. OpenWrt 25.x installs .apk packages instead: build those
# with its SDK from the feed (openwrt/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

die() {
    echo "$*" >&2
    exit 1
}

# OpenWrt package architectures per Rust target: the CPUs the one binary runs on (Rust's
# armv7 target needs VFPv3-D16 and Thumb-2, its aarch64 target plain ARMv8-A; MIPS32r2,
# soft-float for the 24Kc).
package_archs() {
    case $1 in
    mips-unknown-linux-musl) echo mips_24kc ;;
    mipsel-unknown-linux-musl) echo mipsel_24kc ;;
    armv7-unknown-linux-musleabihf)
        echo arm_cortex-a7_neon-vfpv4 arm_cortex-a9_vfpv3-d16 arm_cortex-a15_neon-vfpv4
        ;;
    aarch64-unknown-linux-musl) echo aarch64_cortex-a53 aarch64_cortex-a72 aarch64_generic ;;
    *) die "unknown target $1 (targets: those of packaging/cross/build.sh)" ;;
    esac
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(mips-unknown-linux-musl mipsel-unknown-linux-musl
    armv7-unknown-linux-musleabihf aarch64-unknown-linux-musl)
for target in "${targets[@]}"; do package_archs "$target" >/dev/null; done

# What the feed's Makefiles say (one line each).
makefile=openwrt/throttlewatch/Makefile
luci_makefile=openwrt/luci-app-throttlewatch/Makefile
var() { # FILE NAME: the value of `NAME:=value` (two leading spaces allowed: define blocks)
    local value
    value=$(sed -n "s/^ *$2:=//p" "$1" | head -n 1)
    [ -n "$value" ] || die "$1: no $2:="
    echo "$value"
}
name=$(var $makefile PKG_NAME)
version=$(var $makefile PKG_VERSION)-$(var $makefile PKG_RELEASE)
license=$(var $makefile PKG_LICENSE)
license_files=$(var $makefile PKG_LICENSE_FILES)
section=$(var $makefile SECTION)
userid=$(var $makefile USERID)
cargo_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[ "$(var $makefile PKG_VERSION)" = "$cargo_version" ] ||
    die "$makefile: PKG_VERSION $(var $makefile PKG_VERSION) is not Cargo.toml's $cargo_version"
# DEPENDS as OpenWrt writes it into the control file: libc (added to every package), and each
# +package under the name its ABI version gives it (libpcap's ABI_VERSION is 1).
[ "$(var $makefile DEPENDS)" = '$(RUST_ARCH_DEPENDS) +libpcap' ] ||
    die "$makefile: DEPENDS changed; update the Depends field in $0"
depends="libc, libpcap1"
[ "$(var $luci_makefile LUCI_DEPENDS)" = '+throttlewatch +luci-base' ] ||
    die "$luci_makefile: LUCI_DEPENDS changed; update the Depends field in $0"
luci_version=$(var $luci_makefile PKG_VERSION)-$(var $luci_makefile PKG_RELEASE)
[ "$luci_version" = "$version" ] || die "$luci_makefile: version $luci_version, not $version"
# The description as package-ipkg.mk writes it: each line's leading blanks become one space.
description() { # FILE DEFINE
    awk -v start="define $2" '$0 == start { on = 1; next } on && /^endef/ { exit } on' "$1" |
        sed 's/^[[:space:]]*/ /'
}
[ -n "$(description $makefile Package/throttlewatch/description)" ] ||
    die "$makefile: no Package/throttlewatch/description"

epoch=$(git log -1 --format=%ct 2>/dev/null) || die "not a git checkout: no commit date"
commit=$(git rev-parse HEAD)
git diff --quiet HEAD -- || commit="$commit (with uncommitted changes)"

out=$repo/target/release-artefacts
work=$repo/target/release-work
rm -rf "$out" "$work"
mkdir -p "$out" "$work"

# A reproducible tar.gz of a directory's contents, as ipkg-build makes them.
tar_gz() { # DIR OUTPUT [MEMBERS...]
    local dir=$1 output=$2
    shift 2
    [ $# -gt 0 ] || set -- .
    tar -C "$dir" --format=gnu --numeric-owner --owner=0 --group=0 --sort=name \
        --mtime="@$epoch" -cf - "$@" | gzip -n >"$output"
}

# Package the tree DIR/data with the control files in DIR/CONTROL (control without
# Installed-Size, which is added here) into OUT/NAME_VERSION_ARCH.ipk.
ipk() { # DIR PACKAGE ARCH
    local dir=$1 package=$2 arch=$3 size
    tar_gz "$dir/data" "$dir/data.tar.gz"
    size=$(zcat "$dir/data.tar.gz" | wc -c)
    echo "Installed-Size: $size" >>"$dir/CONTROL/control"
    description_of "$package" >>"$dir/CONTROL/control"
    tar_gz "$dir/CONTROL" "$dir/control.tar.gz"
    echo 2.0 >"$dir/debian-binary"
    tar_gz "$dir" "$out/${package}_${version}_$arch.ipk" ./debian-binary ./data.tar.gz ./control.tar.gz
}
description_of() {
    case $1 in
    "$name")
        printf 'Description: '
        description $makefile Package/throttlewatch/description
        ;;
    luci-app-*) echo "Description:  $(var $luci_makefile LUCI_DESCRIPTION)" ;;
    esac
}

# include/package-ipkg.mk's postinst and prerm (no package-specific scripts: the Makefile
# defines none).
default_scripts() { # CONTROL_DIR
    printf '%s\n' '#!/bin/sh' '[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0' \
        '[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0' \
        '. ${IPKG_INSTROOT}/lib/functions.sh' 'default_postinst $0 $@' >"$1/postinst"
    printf '%s\n' '#!/bin/sh' '[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0' \
        '. ${IPKG_INSTROOT}/lib/functions.sh' 'default_prerm $0 $@' >"$1/prerm"
    chmod 0755 "$1/postinst" "$1/prerm"
}

for target in "${targets[@]}"; do
    packaging/cross/build.sh "$target"
    binary=target/cross/$target/bin/throttlewatch
    install -m 0755 "$binary" "$out/$name-${version%-*}-$target"
    for arch in $(package_archs "$target"); do
        dir=$work/$name-$arch
        mkdir -p "$dir/CONTROL"
        # Package/throttlewatch/install, with rules.mk's INSTALL_DIR, INSTALL_BIN and
        # INSTALL_CONF (0755, 0755, 0600).
        install -d -m 0755 "$dir/data/usr/bin" "$dir/data/etc/config" "$dir/data/etc/init.d"
        install -m 0755 "$binary" "$dir/data/usr/bin/throttlewatch"
        install -m 0600 openwrt/throttlewatch/files/throttlewatch.config "$dir/data/etc/config/throttlewatch"
        install -m 0755 openwrt/throttlewatch/files/throttlewatch.init "$dir/data/etc/init.d/throttlewatch"
        printf '%s\n' \
            "Package: $name" \
            "Version: $version" \
            "Depends: $depends" \
            "Source: feeds/throttlewatch/$name" \
            "SourceName: $name" \
            "License: $license" \
            "LicenseFiles: $license_files" \
            "Section: $section" \
            "SourceDateEpoch: $epoch" \
            "Require-User: $userid" \
            "Architecture: $arch" >"$dir/CONTROL/control"
        awk '/^define Package\/throttlewatch\/conffiles$/ { on = 1; next } on && /^endef/ { exit } on' \
            $makefile >"$dir/CONTROL/conffiles"
        [ -s "$dir/CONTROL/conffiles" ] || die "$makefile: no conffiles"
        default_scripts "$dir/CONTROL"
        ipk "$dir" "$name" "$arch"
    done
done

# luci-app-throttlewatch: luci.mk installs htdocs/ under /www and root/ as it is; its postinst
# (postinst-pkg, run by default_postinst) flushes LuCI's caches and reloads rpcd's ACLs.
dir=$work/luci-app-throttlewatch
mkdir -p "$dir/CONTROL" "$dir/data/www"
cp -R openwrt/luci-app-throttlewatch/htdocs/. "$dir/data/www/"
cp -R openwrt/luci-app-throttlewatch/root/. "$dir/data/"
find "$dir/data" -type d -exec chmod 0755 {} + -o -type f -exec chmod 0644 {} +
printf '%s\n' \
    "Package: luci-app-throttlewatch" \
    "Version: $version" \
    "Depends: libc, throttlewatch, luci-base" \
    "Source: feeds/throttlewatch/luci-app-throttlewatch" \
    "SourceName: luci-app-throttlewatch" \
    "License: $(var $luci_makefile PKG_LICENSE)" \
    "Section: luci" \
    "SourceDateEpoch: $epoch" \
    "Architecture: $(var $luci_makefile LUCI_PKGARCH)" >"$dir/CONTROL/control"
default_scripts "$dir/CONTROL"
printf '%s\n' '#!/bin/sh' '[ -n "${IPKG_INSTROOT}" ] || {' \
    '	rm -f /tmp/luci-indexcache.*' '	rm -rf /tmp/luci-modulecache/' \
    '	killall -HUP rpcd 2>/dev/null' '	exit 0' '}' >"$dir/CONTROL/postinst-pkg"
chmod 0755 "$dir/CONTROL/postinst-pkg"
ipk "$dir" luci-app-throttlewatch "$(var $luci_makefile LUCI_PKGARCH)"

{
    echo "throttlewatch $version for OpenWrt, packaging/release.sh"
    echo "commit: $commit"
    echo "commit date (SOURCE_DATE_EPOCH): $epoch"
    echo "targets: ${targets[*]}"
    echo "rustc (stable): $(rustc --version)"
    echo "rustc (nightly, MIPS and armv7 with -Zbuild-std): $(rustc +nightly --version)"
    echo "musl: $(ls target/cross/musl/src/ | sed -n 's/^musl_\(.*\)\.orig\.tar\.gz$/\1/p')," \
        "from Debian's source package, built by packaging/cross/musl.sh"
    echo "libpcap: $(ls target/cross/libpcap/src/ | sed -n 's/^libpcap_\(.*\)\.orig\.tar\.gz$/\1/p')," \
        "from Debian's source package, built by packaging/cross/libpcap.sh"
} >"$out/BUILDINFO"
(cd "$out" && sha256sum -- * >SHA256SUMS)
rm -rf "$work"
echo "release artefacts in $out:"
(cd "$out" && ls -l -- *)
