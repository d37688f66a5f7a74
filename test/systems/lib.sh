# Shared by the test/systems setup scripts (sourced). Needs `fail` defined.

# The one lock every package install of the tests takes (setup scripts,
# packages.sh, the dashboard test's chromium), so that two apt-get or
# debconf runs never race for dpkg's or debconf's own locks.
VMPILOT_APT_LOCK=/tmp/vmpilot-apt.lock

# apt_install PKG...: install the Debian packages that are missing, once,
# under the one lock. Fails (via `fail`) with apt's last lines.
apt_install() {
  local need=() p log
  for p in "$@"; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
  done
  [ ${#need[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || fail "${need[*]} not installed, and installing needs root"
  log=$(mktemp)
  echo "installing Debian packages: ${need[*]}" >&2
  (
    flock -w 900 9 || { echo "timed out waiting for $VMPILOT_APT_LOCK" >"$log"; exit 1; }
    apt-get update -qq >"$log" 2>&1 || exit 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >"$log" 2>&1
  ) 9>"$VMPILOT_APT_LOCK" || { local why; why=$(tail -3 "$log"); rm -f "$log"; fail "cannot install ${need[*]}: $why"; }
  rm -f "$log"
}

# sge_preseed: the answers Grid Engine's packages ask debconf for, set under
# the install lock (debconf's database has a lock of its own that a
# concurrent apt-get holds).
sge_preseed() {
  (
    flock -w 900 9 || fail "timed out waiting for $VMPILOT_APT_LOCK"
    local p
    for p in gridengine-common gridengine-client gridengine-master gridengine-exec; do
      printf '%s shared/gridengineconfig boolean true\n%s shared/gridenginecell string default\n%s shared/gridenginemaster string localhost\n' "$p" "$p" "$p"
    done | debconf-set-selections
  ) 9>"$VMPILOT_APT_LOCK"
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
