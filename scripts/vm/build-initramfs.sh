#!/usr/bin/env bash
# Builds the initramfs of wgjit's test VM: busybox-static, the kernel modules
# the VM needs before its root exists (virtio, 9p) and those the tests use
# (wireguard, veth, tc/BPF, bridge, tun, nf_tables) with their dependencies, and
# scripts/vm/init as /init. Uncompressed: under software emulation unpacking
# costs more than the few extra MB of copying.
#
#   scripts/vm/build-initramfs.sh KVER OUT
#
# Called by harness/testbed/vm.ts, which caches OUT by kernel version and a hash
# of this script and the init; run it by hand only to look inside.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 KVER OUT" >&2
  exit 2
fi
kver=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)

# Many other pieces the tests need are built into Debian's 6.1 kernel
# (CONFIG_=y): network namespaces, IPv6, BPF syscall/JIT/BTF, XDP, clsact's
# tc actions core, devtmpfs, tmpfs, the 8250 serial console.
MODULES=(
  virtio_pci virtio_rng 9pnet_virtio 9p
  wireguard veth sch_ingress cls_bpf act_bpf bridge tun dummy
  nf_tables
)

busybox=/bin/busybox
if ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
  # No `file`? Ask the loader instead: a static binary has no interpreter.
  if ldd "$busybox" >/dev/null 2>&1; then
    echo "$0: $busybox is not static; install busybox-static" >&2
    exit 1
  fi
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,run,tmp,etc,lib/modules,mnt/root,mnt/io}

cp "$busybox" "$stage/bin/busybox"
for applet in $("$stage/bin/busybox" --list-full); do
  [ -e "$stage/$applet" ] || ln -s /bin/busybox "$stage/$applet"
done

# `modprobe --show-depends` prints, in load order, "insmod PATH [OPTIONS]"
# per module (options from modprobe.d included) or "builtin NAME".
: >"$stage/etc/modules.load"
modprobe -S "$kver" --show-depends -a "${MODULES[@]}" | while read -r kind path opts; do
  [ "$kind" = insmod ] || continue
  name=$(basename "$path")
  case "$name" in
    *.ko) ;;
    *.ko.xz) name=${name%.xz} ;;
    *.ko.zst) name=${name%.zst} ;;
    *) echo "$0: unexpected module file $path" >&2; exit 1 ;;
  esac
  [ -e "$stage/lib/modules/$name" ] && continue
  case "$path" in
    *.xz) xz -dc "$path" >"$stage/lib/modules/$name" ;;
    *.zst) zstd -qdc "$path" >"$stage/lib/modules/$name" ;;
    *) cp "$path" "$stage/lib/modules/$name" ;;
  esac
  echo "$name $opts" >>"$stage/etc/modules.load"
done
if [ ! -s "$stage/etc/modules.load" ]; then
  echo "$0: no modules found for kernel $kver" >&2
  exit 1
fi

# The kernel opens /dev/console for /init before anything is mounted. Only
# root may make it; without it /init starts with no output until it has
# mounted devtmpfs and reopened the console itself.
mknod -m 600 "$stage/dev/console" c 5 1 2>/dev/null || true

install -m 755 "$here/init" "$stage/init"

mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
(cd "$stage" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --owner=0:0 --quiet) >"$tmp"
mv -f "$tmp" "$out"
