#!/bin/bash
# Stop the test Grid Engine started by setup.sh, by its pid files (never by
# name). The packages and the cell stay, so the next run starts in seconds.
# qmaster takes about 12 s to exit on TERM.
set -uo pipefail
pids=()
for f in /var/spool/gridengine/execd/localhost/execd.pid /var/spool/gridengine/qmaster/qmaster.pid; do
  if [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; then
    pids+=("$(cat "$f")")
    kill "$(cat "$f")" 2>/dev/null
  fi
done
for _ in $(seq 300); do
  left=0
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && left=1; done
  [ $left = 0 ] && exit 0
  sleep 0.1
done
for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
exit 0
