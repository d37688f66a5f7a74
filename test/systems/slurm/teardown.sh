#!/bin/bash
# Stop the test Slurm started by setup.sh, by its pid files (never by name).
# Leaves the packages installed so the next run starts in about a second.
set -uo pipefail
. "$(dirname "$0")/../lib.sh"
dir=${VMPILOT_SLURM_DIR:-/tmp/vmpilot-slurm}
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
# jobs still running would outlive the daemons (their slurmstepd stays): cancel them first
if [ -f "$dir/slurm.conf" ] && alive "$dir/slurmctld.pid"; then
  jobs=$(SLURM_CONF="$dir/slurm.conf" squeue -h -o %i 2>/dev/null) && [ -n "$jobs" ] &&
    SLURM_CONF="$dir/slurm.conf" scancel --full $jobs >/dev/null 2>&1
  for _ in $(seq 100); do [ -z "$(SLURM_CONF="$dir/slurm.conf" squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.1; done
fi
stop_by_pidfiles 200 "$dir/slurmd.pid" "$dir/slurmctld.pid" /run/munge/munged.pid
exit 0
