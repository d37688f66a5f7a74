#!/bin/bash
# Stop the test Slurm started by setup.sh, by its pid files (never by name).
# Leaves the packages installed so the next run starts in about a second.
set -uo pipefail
. "$(dirname "$0")/../lib.sh"
dir=${VMPILOT_SLURM_DIR:-/tmp/vmpilot-slurm}
stop_by_pidfiles 200 "$dir/slurmd.pid" "$dir/slurmctld.pid" /run/munge/munged.pid
exit 0
