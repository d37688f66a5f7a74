#!/bin/bash
# Stop the test sshd started by setup.sh, by its pid file (never by name).
# The sessions it forked end with their connections.
set -uo pipefail
. "$(dirname "$0")/../lib.sh"
dir=${VMPILOT_SSHD_DIR:-/tmp/vmpilot-sshd}
stop_by_pidfiles 50 "$dir/sshd.pid"
exit 0
