# Shared by the test/systems setup scripts (sourced). Needs `fail` defined.

# apt_install PKG...: install the Debian packages that are missing, once.
# Setup scripts of tests running side by side share one lock, so two apt-get
# runs never race for dpkg's lock. Fails (via `fail`) with apt's last lines.
apt_install() {
  local need=() p log
  for p in "$@"; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
  done
  [ ${#need[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || fail "${need[*]} not installed, and installing needs root"
  log=$(mktemp)
  (
    flock -w 900 9 || { echo "timed out waiting for /tmp/vmpilot-apt.lock" >"$log"; exit 1; }
    apt-get update -qq >"$log" 2>&1 || exit 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >"$log" 2>&1
  ) 9>/tmp/vmpilot-apt.lock || { local why; why=$(tail -3 "$log"); rm -f "$log"; fail "cannot install ${need[*]}: $why"; }
  rm -f "$log"
}

# stop_by_pidfiles TENTHS FILE...: TERM every live process named by a pid file
# (never by name), wait up to TENTHS tenths of a second for all to exit, then
# KILL what is left.
stop_by_pidfiles() {
  local tenths=$1 f p left
  shift
  local pids=()
  for f in "$@"; do
    if [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; then
      pids+=("$(cat "$f")")
      kill "$(cat "$f")" 2>/dev/null
    fi
  done
  for _ in $(seq "$tenths"); do
    left=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && left=1; done
    [ $left = 0 ] && return 0
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  return 0
}
