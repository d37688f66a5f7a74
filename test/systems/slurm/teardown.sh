#!/bin/bash
# Stop the test Slurm started by setup.sh, by its pid files (never by name).
# Leaves the packages installed so the next run starts in about a second.
set -uo pipefail
dir=${VMPILOT_SLURM_DIR:-/tmp/vmpilot-slurm}
pids=()
for f in "$dir/slurmd.pid" "$dir/slurmctld.pid" /run/munge/munged.pid; do
  if [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; then
    pids+=("$(cat "$f")")
    kill "$(cat "$f")" 2>/dev/null
  fi
done
for _ in $(seq 200); do
  left=0
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && left=1; done
  [ $left = 0 ] && exit 0
  sleep 0.1
done
for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
exit 0
