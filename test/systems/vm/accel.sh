#!/bin/bash
# Which QEMU accelerator works here: KVM when /dev/kvm exists AND a kernel
# really boots under it (a nested PVM /dev/kvm makes stock kernels die with
# "KVM internal error"), else TCG (software emulation). The answer is cached
# beside the image. Usage: accel.sh IMAGE_DIR. Prints ACCEL=kvm|tcg.
set -euo pipefail
dir=$1
if [ -f "$dir/accel" ]; then echo "ACCEL=$(cat "$dir/accel")"; exit 0; fi
accel=tcg
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
  log=$(mktemp)
  # the kernel and initrd only; init exits at once, the kernel panics, -no-reboot ends QEMU
  timeout 60 qemu-system-x86_64 -accel kvm -cpu host -m 256 -nodefaults -display none -no-reboot \
    -kernel "$dir/vmlinuz" -initrd "$dir/initrd.img" -append "console=ttyS0 panic=-1 rdinit=/bin/false" \
    -serial "file:$log" >/dev/null 2>"$log.err" || true
  if grep -q 'Kernel panic' "$log" && ! grep -qi 'KVM internal error' "$log" "$log.err"; then accel=kvm; fi
  rm -f "$log" "$log.err"
fi
echo "$accel" > "$dir/accel"
echo "ACCEL=$accel"
