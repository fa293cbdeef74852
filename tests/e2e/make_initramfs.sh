#!/usr/bin/env bash
# Builds the stand-in for Talos that the end-to-end tests network-boot under QEMU:
# Debian's kernel (from the package linux-image-amd64 depends on, fetched with
# `apt-get download` into CACHE_DIR once and never installed) and a tiny busybox
# initramfs whose /init
#   1. mounts proc, sys, dev and insmods the NIC drivers (virtio-net or e1000),
#   2. runs udhcpc (QEMU's user network gives 10.0.2.15; the host is 10.0.2.2),
#   3. fetches the URL in `talos.config=` from /proc/cmdline (iPXE already
#      expanded ${mac:hexhyp}),
#   4. checks that the config names the machine: its first `hostname:` value must
#      equal `ironboot.e2e.hostname=` from the cmdline when that is given,
#   5. prints one marker line on the serial console and powers off:
#        IRONBOOT-E2E: config ok build=<BUILD> mac=<mac> hostname=<h> bytes=<n>
#        IRONBOOT-E2E: config FAILED build=<BUILD> mac=<mac> reason=<why>
#
# Usage: make_initramfs.sh CACHE_DIR OUT_DIR BUILD_MARKER
# Writes OUT_DIR/vmlinuz and OUT_DIR/initramfs.img (gzip newc cpio). BUILD_MARKER
# ([A-Za-z0-9._-]+) is baked into /init so two builds differ in content and sha512.
# An OUT_DIR built before by this same script (and kernel) is left as it is.
# Concurrent runs (ctest -j) serialize on a lock in CACHE_DIR.
# Needs: apt-get, dpkg-deb, busybox-static, cpio, gzip.
set -euo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 CACHE_DIR OUT_DIR BUILD_MARKER" >&2
  exit 2
fi
cache=$1
out=$2
marker=$3
if ! [[ $marker =~ ^[A-Za-z0-9._-]+$ ]]; then
  echo "make_initramfs: BUILD_MARKER \"$marker\" must match [A-Za-z0-9._-]+" >&2
  exit 2
fi
busybox=/bin/busybox
# Capture the applet list first: `busybox | grep -q` under pipefail fails at
# random when grep exits early and busybox dies of SIGPIPE.
applets=$("$busybox" 2>/dev/null || true)
if [[ "$applets" != *udhcpc* ]]; then
  echo "make_initramfs: $busybox has no udhcpc (install busybox-static)" >&2
  exit 1
fi
if ldd "$busybox" >/dev/null 2>&1; then
  echo "make_initramfs: $busybox is dynamically linked (install busybox-static)" >&2
  exit 1
fi
mkdir -p "$cache" "$out"
cache=$(cd "$cache" && pwd)
exec 9>"$cache/.lock"
flock 9

# The kernel package linux-image-amd64 depends on, extracted once into the cache
# (only the kernel and the NIC modules: the whole package is ~400 MB unpacked).
modules_wanted=(
  kernel/drivers/virtio/virtio_ring.ko
  kernel/drivers/virtio/virtio.ko
  kernel/drivers/virtio/virtio_pci_modern_dev.ko
  kernel/drivers/virtio/virtio_pci_legacy_dev.ko
  kernel/drivers/virtio/virtio_pci.ko
  kernel/net/core/failover.ko
  kernel/drivers/net/net_failover.ko
  kernel/drivers/net/virtio_net.ko
  kernel/drivers/net/ethernet/intel/e1000/e1000.ko
)
if [ ! -f "$cache/kernel.done" ]; then
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  if [ -z "$pkg" ]; then
    echo "make_initramfs: cannot resolve linux-image-amd64's kernel package (apt-get update?)" >&2
    exit 1
  fi
  rm -rf "$cache/deb" "$cache/root" && mkdir -p "$cache/deb" "$cache/root"
  (cd "$cache/deb" && apt-get download -q "$pkg" 2>&1 | grep -v 'unsandboxed' >&2 || true)
  deb=$(ls "$cache"/deb/*.deb 2>/dev/null | head -1)
  if [ -z "$deb" ]; then
    echo "make_initramfs: apt-get download $pkg produced no .deb" >&2
    exit 1
  fi
  # Equivalent to `dpkg -x`, limited to the files needed.
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$cache/root" --wildcards './boot/vmlinuz-*' \
    $(printf './lib/modules/*/%s ' "${modules_wanted[@]}")
  rm -rf "$cache/deb"
  touch "$cache/kernel.done"
fi
stamp="$out/.built-$marker"
if [ -f "$stamp" ] && [ "$stamp" -nt "$0" ] && [ "$stamp" -nt "$cache/kernel.done" ] &&
   [ -f "$out/vmlinuz" ] && [ -f "$out/initramfs.img" ]; then
  exit 0
fi
rm -f "$out"/.built-*
kernel=$(ls "$cache"/root/boot/vmlinuz-* | head -1)
moddir=$(ls -d "$cache"/root/lib/modules/* | head -1)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,proc,sys,dev,tmp,etc/udhcpc,modules}
cp "$busybox" "$stage/bin/busybox"
for m in "${modules_wanted[@]}"; do
  cp "$moddir/$m" "$stage/modules/"
done

# udhcpc only configures the interface through this script.
cat >"$stage/etc/udhcpc/default.script" <<'EOF'
#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    for r in $router; do ip route add default via "$r" dev "$interface"; break; done
    ;;
  deconfig) ip link set "$interface" up; ip addr flush dev "$interface" ;;
esac
exit 0
EOF
chmod 755 "$stage/etc/udhcpc/default.script"

cat >"$stage/init" <<EOF
#!/bin/busybox sh
BUILD=$marker
EOF
cat >>"$stage/init" <<'EOF'
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec >/dev/console 2>&1
report() {
  echo "IRONBOOT-E2E: $*"
  sync
  poweroff -f
}
arg() {
  for w in $(cat /proc/cmdline); do
    case "$w" in "$1"=*) echo "${w#*=}"; return ;; esac
  done
}
# Dependency order; whichever NIC QEMU has, the other drivers fail harmlessly.
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci \
         failover net_failover virtio_net e1000; do
  insmod /modules/$m.ko 2>/dev/null
done
iface=
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
  for n in /sys/class/net/*; do
    case "${n##*/}" in lo|'*') ;; *) iface=${n##*/}; break ;; esac
  done
  [ -n "$iface" ] && break
  sleep 0.5
done
[ -n "$iface" ] || report "config FAILED build=$BUILD mac=none reason=no-network-interface"
mac=$(cat /sys/class/net/$iface/address)
ip link set lo up
ip link set "$iface" up
udhcpc -i "$iface" -n -q -t 10 -T 1 >/dev/null 2>&1 || report "config FAILED build=$BUILD mac=$mac reason=dhcp"
url=$(arg talos.config)
[ -n "$url" ] || report "config FAILED build=$BUILD mac=$mac reason=no-talos.config-on-cmdline"
echo "IRONBOOT-E2E: fetching $url"
err=$(timeout 20 wget -q -O /tmp/config "$url" 2>&1) || {
  code=$(echo "$err" | sed -n 's/.*HTTP\/1\.[01] \([0-9][0-9][0-9]\).*/\1/p' | head -1)
  report "config FAILED build=$BUILD mac=$mac reason=http-${code:-error}"
}
bytes=$(wc -c </tmp/config)
host=$(sed -n 's/^[[:space:]]*hostname:[[:space:]]*\([^[:space:]#]*\).*/\1/p' /tmp/config | head -1)
host=${host#\"}; host=${host%\"}
want=$(arg ironboot.e2e.hostname)
if [ -n "$want" ] && [ "$host" != "$want" ]; then
  report "config FAILED build=$BUILD mac=$mac reason=hostname-mismatch got=${host:-none} want=$want"
fi
report "config ok build=$BUILD mac=$mac hostname=${host:-none} bytes=$bytes"
EOF
chmod 755 "$stage/init"

(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc --quiet --reproducible | gzip -9n) >"$out/initramfs.img.tmp"
mv "$out/initramfs.img.tmp" "$out/initramfs.img"
cp "$kernel" "$out/vmlinuz"
touch "$stamp"
