#!/bin/bash
# PBS on the test Slurm: Slurm's PBS-style qsub (package slurm-wlm-torque)
# translates "#PBS" headers into an sbatch submission. That package conflicts
# with gridengine-client, so it is NOT installed: its .deb is downloaded once
# with apt-get and only its qsub is unpacked into a directory of our own,
# beside a link to sbatch (qsub runs the sbatch of its own directory). Its
# Perl dependencies do not conflict and are installed. Runs slurm/setup.sh
# first. Idempotent. Prints SLURM_CONF= and PBS_QSUB=.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${VMPILOT_PBS_DIR:-/tmp/vmpilot-pbs}
fail() { echo "pbs setup: $*" >&2; exit 1; }
# the holder of the cluster is our caller (the test), not this script
VMPILOT_HOLDER=${VMPILOT_HOLDER:-$PPID} "$here/../slurm/setup.sh" >/dev/null
mkdir -p "$dir/bin" "$dir/deb"
. "$here/../lib.sh"
apt_install libslurm-perl libslurmdb-perl libswitch-perl
if [ ! -x "$dir/bin/qsub" ]; then
  rm -f "$dir"/deb/*.deb
  # under the install lock: a concurrent `apt-get update` rewrites the lists apt-get download reads
  (flock -w 900 9 || exit 1; cd "$dir/deb" || exit 1; chown _apt: . 2>/dev/null; apt-get download -qq slurm-wlm-torque >"$dir/download.log" 2>&1) 9>"$VMPILOT_APT_LOCK" ||
    fail "cannot download slurm-wlm-torque: $(tail -3 "$dir/download.log")"
  rm -rf "$dir/deb/root"
  dpkg-deb -x "$dir"/deb/slurm-wlm-torque_*.deb "$dir/deb/root" || fail "cannot unpack slurm-wlm-torque"
  cp "$dir/deb/root/usr/bin/qsub" "$dir/bin/qsub.new"
  mv -f "$dir/bin/qsub.new" "$dir/bin/qsub"
fi
ln -sfn "$(command -v sbatch)" "$dir/bin/sbatch"
echo "SLURM_CONF=${VMPILOT_SLURM_DIR:-/tmp/vmpilot-slurm}/slurm.conf"
echo "PBS_QSUB=$dir/bin/qsub"
