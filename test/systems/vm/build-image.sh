#!/bin/bash
# Build (once) a minimal Debian 12 image with cloud-init and NO Node.js, for
# the QEMU test, and cache it outside the repository keyed by its recipe
# (this script's own text): ${VMPILOT_VM_CACHE:-~/.cache/vmpilot/vm}/<key>/
# holds disk.qcow2, vmlinuz, initrd.img. Installs qemu, mmdebstrap and
# cloud-image-utils when missing; fails with the reason when it cannot.
# Prints VM_IMAGE_DIR=<dir>.
set -euo pipefail
fail() { echo "vm image: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "must run as root (installs packages, builds a root filesystem)"
. "$(dirname "$0")/../lib.sh"
apt_install qemu-system-x86 qemu-utils mmdebstrap cloud-image-utils e2fsprogs

key=$(sha256sum "$0" | cut -c1-16)
cache=${VMPILOT_VM_CACHE:-${HOME:-/root}/.cache/vmpilot/vm}
out=$cache/$key
if [ -f "$out/ok" ]; then echo "VM_IMAGE_DIR=$out"; exit 0; fi
work=$(mktemp -d "$cache.build.XXXXXX" 2>/dev/null || { mkdir -p "$cache" && mktemp -d "$cache.build.XXXXXX"; })
trap 'rm -rf "$work"' EXIT
root=$work/rootfs

# the image: systemd, a cloud kernel, cloud-init, curl (as on standard cloud images); no Node.js
mmdebstrap --quiet --variant=minbase \
  --include=systemd-sysv,udev,linux-image-cloud-amd64,initramfs-tools,cloud-init,util-linux,e2fsprogs,kmod,procps,curl,ca-certificates,iproute2 \
  bookworm "$root" >"$work/mmdebstrap.log" 2>&1 || fail "mmdebstrap failed: $(tail -5 "$work/mmdebstrap.log")"
[ ! -e "$root/usr/bin/node" ] || fail "the image must not have node"

# cloud-init: NoCloud seed only, C.UTF-8 (no locales package), no network config of its own
cat > "$root/etc/cloud/cloud.cfg.d/90-vmpilot-test.cfg" <<'CFG'
datasource_list: [NoCloud, None]
locale: C.UTF-8
network: {config: disabled}
CFG
# user networking (the NIC is ens2 or ens3 depending on the PCI slot): the guest is 10.0.2.15,
# the host's forward is 10.0.2.100; no DNS, no default route
cat > "$root/etc/systemd/network/10-ens3.network" <<'NET'
[Match]
Name=en* eth*
[Network]
Address=10.0.2.15/24
LinkLocalAddressing=no
IPv6AcceptRA=no
NET
ln -sf /lib/systemd/system/systemd-networkd.service "$root/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
mkdir -p "$root/etc/systemd/system/network-online.target.wants"
ln -sf /lib/systemd/system/systemd-networkd-wait-online.service "$root/etc/systemd/system/network-online.target.wants/systemd-networkd-wait-online.service"
echo vmpilot-vm > "$root/etc/hostname"
echo '/dev/vda / ext4 rw,relatime 0 1' > "$root/etc/fstab"

cp -L "$root/vmlinuz" "$work/vmlinuz"
cp -L "$root/initrd.img" "$work/initrd.img"
truncate -s 2G "$work/disk.raw"
mkfs.ext4 -q -F -L root -d "$root" "$work/disk.raw" || fail "mkfs.ext4 -d failed"
qemu-img convert -O qcow2 "$work/disk.raw" "$work/disk.qcow2"
rm -rf "$root" "$work/disk.raw"
mkdir -p "$out"
mv "$work/disk.qcow2" "$work/vmlinuz" "$work/initrd.img" "$out/"
touch "$out/ok"
echo "VM_IMAGE_DIR=$out"
