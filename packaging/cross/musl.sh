#!/usr/bin/env bash
# Build an OpenWrt-like musl sysroot for a router CPU: musl (the source of Debian's package,
# `apt-get source musl`, which needs a deb-src line) cross-compiled with Debian's gcc for the
# target, with OpenWrt's ABI and dynamic loader, and a gcc driver that links against it.
#
#   packaging/cross/musl.sh TARGET
#
# TARGET (Rust's triple)          OpenWrt package arch       dynamic loader
#   mips-unknown-linux-musl       mips_24kc (soft-float)     /lib/ld-musl-mips-sf.so.1
#   mipsel-unknown-linux-musl     mipsel_24kc (soft-float)   /lib/ld-musl-mipsel-sf.so.1
#   armv7-unknown-linux-musleabihf arm_cortex-a7_neon-vfpv4  /lib/ld-musl-armhf.so.1
#   aarch64-unknown-linux-musl    aarch64_cortex-a53         /lib/ld-musl-aarch64.so.1
#
# Writes target/cross/musl/TARGET/ (skipped when its stamp file says it is built):
#   sysroot/           lib/libc.so with the loader's link to it (as OpenWrt's libc package),
#                      libgcc_s (below), crt files, musl's and Linux's headers;
#                      packaging/cross/libpcap.sh adds usr/lib/libpcap.so.1
#   bin/cc             gcc for the target against that sysroot (Debian's cross gcc with a
#                      specs file), the linker build.sh gives cargo, as OpenWrt's TARGET_CC
#   env                CC, CFLAGS and the loader's name, for the scripts that build on it
#
# Why the MIPS targets need more: OpenWrt's 24Kc targets are soft-float (no FPU: floating
# point in integer registers and library calls), as is Rust's mips(el)-unknown-linux-musl
# (`+soft-float`), but Debian's mips gcc is hard-float and its libgcc's __adddf3 & co. take
# their arguments in FPU registers. musl and libpcap are compiled with -msoft-float, and the
# soft-float routines come from Rust's own compiler-builtins, built for the target (nightly,
# -Zbuild-std) into softfp/libsoftfp.a.
#
# Needs: gcc-<triple> and linux-libc-dev-<arch>-cross (Debian's cross gcc and kernel headers),
# make, deb-src in the apt sources; nightly Rust with rust-src for MIPS, rustup's
# aarch64-unknown-linux-musl target for aarch64.
set -euo pipefail
# die, quietly
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/../.."
repo=$PWD

target=${1:?usage: $0 TARGET}
case $target in
mips-unknown-linux-musl)
    gnu=mips-linux-gnu cflags=-msoft-float ldso=ld-musl-mips-sf.so.1
    ;;
mipsel-unknown-linux-musl)
    gnu=mipsel-linux-gnu cflags=-msoft-float ldso=ld-musl-mipsel-sf.so.1
    ;;
armv7-unknown-linux-musleabihf)
    # Debian's armhf gcc: ARMv7-A, VFPv3-D16, Thumb-2, hard-float, as Rust's target.
    gnu=arm-linux-gnueabihf cflags= ldso=ld-musl-armhf.so.1
    ;;
aarch64-unknown-linux-musl)
    gnu=aarch64-linux-gnu cflags= ldso=ld-musl-aarch64.so.1
    ;;
*)
    echo "usage: $0 TARGET (mips-unknown-linux-musl, mipsel-unknown-linux-musl, armv7-unknown-linux-musleabihf, aarch64-unknown-linux-musl)" >&2
    exit 2
    ;;
esac
command -v "$gnu-gcc" >/dev/null ||
    die "$gnu-gcc missing: apt-get install gcc-$gnu"

base=$repo/target/cross/musl
dir=$base/$target
sysroot=$dir/sysroot
stamp=$dir/.built
if [ -f "$stamp" ]; then
    echo "musl for $target: $sysroot (built before; remove $dir to rebuild)"
    exit 0
fi
rm -rf "$dir"
mkdir -p "$base/src" "$dir/bin"

orig=$(ls "$base"/src/musl_*.orig.tar.gz 2>/dev/null | tail -n 1 || true)
if [ -z "$orig" ]; then
    (cd "$base/src" && apt-get source --download-only musl >/dev/null) ||
        die "apt-get source musl failed: a deb-src line is needed in the apt sources"
    orig=$(ls "$base"/src/musl_*.orig.tar.gz | tail -n 1)
fi

# Soft-float routines for MIPS: compiler-builtins compiled for the target as a static library
# (a crate with nothing of its own; the staticlib carries core and compiler-builtins).
libcc=
if [ -n "$cflags" ]; then
    crate=$dir/softfp
    mkdir -p "$crate"
    printf '%s\n' '[package]' 'name = "softfp"' 'version = "0.0.0"' 'edition = "2021"' \
        '[lib]' 'crate-type = ["staticlib"]' 'path = "lib.rs"' \
        '[profile.release]' 'panic = "abort"' '[workspace]' >"$crate/Cargo.toml"
    printf '%s\n' '//! Nothing: the static library exists for the compiler-builtins it carries.' \
        '#![no_std]' '#[panic_handler]' 'fn panic(_: &core::panic::PanicInfo) -> ! {' \
        '    loop {}' '}' >"$crate/lib.rs"
    (cd "$crate" && cargo +nightly build -q --release -Zbuild-std=core,panic_abort \
        --target "$target" --target-dir "$crate/target")
    libcc=$crate/libsoftfp.a
    cp "$crate/target/$target/release/libsoftfp.a" "$libcc"
    nm "$libcc" 2>/dev/null | grep -E ' [TW] __adddf3$' >/dev/null ||
        die "$libcc has no __adddf3: compiler-builtins without soft-float routines?"
    # Complex multiplication, which compiler-builtins lacks and only musl's cpow and cpowf
    # call: the plain formula, without C Annex G's recovery of infinities.
    printf '%s\n' \
        'float _Complex __mulsc3(float a, float b, float c, float d)' \
        '{ float _Complex z; __real__ z = a * c - b * d; __imag__ z = a * d + b * c; return z; }' \
        'double _Complex __muldc3(double a, double b, double c, double d)' \
        '{ double _Complex z; __real__ z = a * c - b * d; __imag__ z = a * d + b * c; return z; }' \
        >"$crate/mulc3.c"
    "$gnu-gcc" $cflags -Os -fPIC -c -o "$crate/mulc3.o" "$crate/mulc3.c"
    ar rcs "$libcc" "$crate/mulc3.o"
fi

# The gcc driver for the target: musl's headers, crt files and libc instead of glibc's, and
# OpenWrt's dynamic loader (as musl's own musl-gcc.specs, with the loader's run-time path).
libgcc_a=$("$gnu-gcc" $cflags -print-libgcc-file-name)
# gcc's crtbeginS.o and crtendS.o (frame_dummy and the like, no floating point): for MIPS,
# copies without the hard-float tags of Debian's build, which make ld warn on every link.
crtbegin=crtbeginS.o%s crtend=crtendS.o%s
if [ -n "$cflags" ]; then
    for crt in crtbeginS crtendS; do
        "$gnu-objcopy" --remove-section=.gnu.attributes --remove-section=.MIPS.abiflags \
            "$("$gnu-gcc" -print-file-name=$crt.o)" "$dir/$crt.o"
    done
    crtbegin=$dir/crtbeginS.o crtend=$dir/crtendS.o
fi
cat >"$dir/musl-gcc.specs" <<EOF
%rename cpp_options old_cpp_options

*cpp_options:
-nostdinc -isystem $sysroot/usr/include -isystem include%s %(old_cpp_options)

*cc1:
%(cc1_cpu) -nostdinc -isystem $sysroot/usr/include -isystem include%s

*link_libgcc:
-L$sysroot/lib -L$sysroot/usr/lib -L .%s

*libgcc:
$libcc $libgcc_a

*startfile:
%{!shared: $sysroot/lib/Scrt1.o} $sysroot/lib/crti.o $crtbegin

*endfile:
$crtend $sysroot/lib/crtn.o

*link:
-dynamic-linker /lib/$ldso -nostdlib %{shared:-shared} %{static:-static} %{rdynamic:-export-dynamic}

EOF
cat >"$dir/bin/cc" <<EOF
#!/bin/sh
# $target: Debian's $gnu-gcc against the musl sysroot beside this folder (packaging/cross/musl.sh).
exec $gnu-gcc $cflags -specs=$dir/musl-gcc.specs "\$@"
EOF
chmod 755 "$dir/bin/cc"

build=$dir/build
mkdir -p "$build"
tar -C "$build" --strip-components=1 -xzf "$orig"
(
    cd "$build"
    quietly configure.log env CC="$gnu-gcc" CFLAGS="$cflags -Os" ./configure --target="$gnu" \
        --prefix=/usr --libdir=/lib --syslibdir=/lib --disable-wrapper
    built_ldso=$(sed -n 's/^ARCH = //p' config.mak)$(sed -n 's/^SUBARCH = //p' config.mak)
    [ "ld-musl-$built_ldso.so.1" = "$ldso" ] ||
        die "musl configured for ld-musl-$built_ldso.so.1, not OpenWrt's $ldso"
    quietly make.log make -j"$(nproc)" ${libcc:+LIBCC="$libcc"}
    quietly install.log make install DESTDIR="$sysroot"
)
# The Linux kernel's headers (Debian's linux-libc-dev-<arch>-cross, which libc6-dev-<arch>-cross
# pulls in), as OpenWrt's toolchain has them beside musl's: libpcap includes <linux/if.h>.
kernel_headers=/usr/$gnu/include
[ -f "$kernel_headers/linux/if.h" ] ||
    die "$kernel_headers/linux missing: apt-get install linux-libc-dev-<arch>-cross (for $gnu)"
cp -a "$kernel_headers/linux" "$kernel_headers/asm" "$kernel_headers/asm-generic" "$sysroot/usr/include/"

# OpenWrt's loader is a relative link to libc.so (musl installs an absolute one, which
# qemu-user's -L would resolve on the host).
ln -sfn libc.so "$sysroot/lib/$ldso"

# libgcc_s: std, linked dynamically, links the unwinder with -lgcc_s (OpenWrt: libgcc_s.so.1 of
# its libgcc package, which its libc package depends on). Debian's unwinder (libgcc_eh.a) has
# hidden symbols, and on aarch64 needs glibc's _dl_find_object, so per target:
# - aarch64: libgcc_s.so.1 made of LLVM's libunwind for musl as rustup ships it for this target
#   (self-contained/libunwind.a), so that the binary needs libgcc_s.so.1 as on OpenWrt;
# - armv7: no musl target in rustup here (std is compiled with -Zbuild-std, without a
#   libunwind); libgcc_s.so is a linker script for Debian's libgcc_eh.a (ARM EHABI, which
#   needs nothing of glibc): the unwinder is linked into the binary;
# - MIPS: no unwinder is called (panic=immediate-abort: no backtraces); an empty libgcc_s.so
#   satisfies -lgcc_s, and a build that did call one would fail to link.
case $target in
aarch64-*)
    libunwind=$(rustc --print sysroot)/lib/rustlib/$target/lib/self-contained/libunwind.a
    [ -f "$libunwind" ] || die "$libunwind missing: rustup target add $target"
    "$dir/bin/cc" -shared -o "$sysroot/lib/libgcc_s.so.1" -Wl,-soname,libgcc_s.so.1 \
        -Wl,--whole-archive "$libunwind" -Wl,--no-whole-archive -lc
    ln -sfn libgcc_s.so.1 "$sysroot/lib/libgcc_s.so"
    ;;
armv7-*)
    echo "INPUT($("$gnu-gcc" -print-file-name=libgcc_eh.a))" >"$sysroot/lib/libgcc_s.so"
    ;;
mips*)
    echo '' | "$dir/bin/cc" -x c -shared -o "$sysroot/lib/libgcc_s.so" -Wl,-soname,libgcc_s.so.1 -
    ;;
esac

printf 'CC=%s\nCFLAGS=%s\nLDSO=/lib/%s\nHOST=%s\n' "$dir/bin/cc" "$cflags" "$ldso" "$gnu" >"$dir/env"
rm -rf "$build"
touch "$stamp"
echo "musl $(basename "$orig" .orig.tar.gz | sed 's/^musl_//') for $target: $sysroot, loader /lib/$ldso"
