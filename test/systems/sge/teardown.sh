#!/bin/bash
# Stop the test Grid Engine started by setup.sh, by its pid files (never by
# name). The packages and the cell stay, so the next run starts in seconds.
# qmaster takes about 12 s to exit on TERM.
set -uo pipefail
. "$(dirname "$0")/../lib.sh"
stop_by_pidfiles 300 /var/spool/gridengine/execd/localhost/execd.pid /var/spool/gridengine/qmaster/qmaster.pid
exit 0
