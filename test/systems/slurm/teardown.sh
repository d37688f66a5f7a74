#!/bin/bash
# Stop the test Slurm started by setup.sh, by its pid files (never by name),
# when the caller was its last live holder (setup.sh says what a holder is);
# otherwise only forget the caller. Leaves the packages installed so the next
# run starts in about a second.
set -uo pipefail
. "$(dirname "$0")/../lib.sh"
dir=${VMPILOT_SLURM_DIR:-/tmp/vmpilot-slurm}
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
holder=${VMPILOT_HOLDER:-$PPID}
exec 7>"$dir.lock"
flock -w 600 7 || { echo "slurm teardown: timed out waiting for $dir.lock" >&2; exit 1; }
rm -f "$dir/holders/$holder"
for f in "$dir"/holders/*; do
  [ -e "$f" ] || continue
  # another test still uses the cluster: it stops it when it is done
  kill -0 "${f##*/}" 2>/dev/null && exit 0
  rm -f "$f"
done
# jobs still running would outlive the daemons (their slurmstepd stays): cancel them first
if [ -f "$dir/slurm.conf" ] && alive "$dir/slurmctld.pid"; then
  jobs=$(SLURM_CONF="$dir/slurm.conf" squeue -h -o %i 2>/dev/null) && [ -n "$jobs" ] &&
    SLURM_CONF="$dir/slurm.conf" scancel --full $jobs >/dev/null 2>&1
  for _ in $(seq 100); do [ -z "$(SLURM_CONF="$dir/slurm.conf" squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.1; done
fi
stop_by_pidfiles 200 "$dir/slurmd.pid" "$dir/slurmctld.pid" /run/munge/munged.pid
exit 0
