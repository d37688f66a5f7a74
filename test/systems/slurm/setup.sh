#!/bin/bash
# Start a single-node Slurm on localhost for the tests: munge, slurmctld,
# slurmd, configured in a directory of our own (SLURM_CONF). Idempotent: a
# second run reuses running daemons. Installs the Debian packages when they are
# missing and fails with the reason when it cannot. Prints "SLURM_CONF=<file>".
# Stop with teardown.sh (by pid files).
#
# Several test files may use the cluster at once: each is a holder
# (VMPILOT_HOLDER, the test process's pid; else our parent's), recorded in
# $dir/holders/. Setup and teardown take one lock, so two never start munge or
# the daemons at once; setup leaves alone the jobs of a live holder, and
# teardown stops the daemons only when it was the last live holder.
set -euo pipefail
dir=${VMPILOT_SLURM_DIR:-/tmp/vmpilot-slurm}
conf=$dir/slurm.conf
export SLURM_CONF=$conf
fail() { echo "slurm setup: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "must run as root (installs packages, starts daemons)"

. "$(dirname "$0")/../lib.sh"
apt_install slurmctld slurmd slurm-client munge

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

holder=${VMPILOT_HOLDER:-$PPID}
# the lock's descriptor is closed for the daemons (7>&-): they would hold it for ever
exec 7>"$dir.lock"
flock -w 600 7 || fail "timed out waiting for $dir.lock (another test's setup or teardown)"
mkdir -p "$dir/holders"
others=0
for f in "$dir"/holders/*; do
  [ -e "$f" ] || continue
  p=${f##*/}
  [ "$p" = "$holder" ] && continue
  if kill -0 "$p" 2>/dev/null; then others=1; else rm -f "$f"; fi
done
: > "$dir/holders/$holder"

mkdir -p "$dir/state" "$dir/spool" "$dir/log"
chown slurm: "$dir/state" "$dir/log"
cat > "$conf.new" <<CONF
ClusterName=vmpilot-test
SlurmctldHost=localhost
AuthType=auth/munge
SlurmUser=slurm
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SchedulerType=sched/backfill
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
KillWait=10
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 RealMemory=1000
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
# the daemons read the config at start: restart them when it changed
if ! cmp -s "$conf.new" "$conf"; then
  for d in slurmd slurmctld; do
    if alive "$dir/$d.pid"; then kill "$(cat "$dir/$d.pid")"; fi
  done
  for _ in $(seq 100); do alive "$dir/slurmd.pid" || alive "$dir/slurmctld.pid" || break; sleep 0.1; done
  mv "$conf.new" "$conf"
else
  rm -f "$conf.new"
fi

mkdir -p /run/munge
chown munge: /run/munge
if ! alive /run/munge/munged.pid; then
  runuser -u munge -- /usr/sbin/munged 7>&- || fail "munged did not start"
fi
for _ in $(seq 50); do munge -n </dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
munge -n </dev/null | unmunge >/dev/null 2>&1 || fail "munge does not work (munge -n | unmunge)"

alive "$dir/slurmctld.pid" || /usr/sbin/slurmctld 7>&- || fail "slurmctld did not start; see $dir/log/slurmctld.log"
alive "$dir/slurmd.pid" || /usr/sbin/slurmd -N localhost 7>&- || fail "slurmd did not start; see $dir/log/slurmd.log"
state=
for _ in $(seq 300); do
  state=$(sinfo -h -n localhost -o %t 2>/dev/null || true)
  [ "$state" = idle ] && break
  # busy with the jobs of another test that holds the cluster: ready, and its jobs are its own
  case $state in mix*|alloc*) [ $others = 1 ] && break ;; esac
  # a node left down or drained by an earlier run: give it back
  case $state in
    down*|drain*) scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true ;;
    # jobs of an earlier run that was killed before its teardown: this cluster is the tests' own
    mix*|alloc*) jobs=$(squeue -h -o %i 2>/dev/null) && [ -n "$jobs" ] && scancel --full $jobs >/dev/null 2>&1 || true ;;
  esac
  sleep 0.1
done
case $state in idle) ;; mix*|alloc*) [ $others = 1 ] || fail "the node is \"$state\", not idle; see $dir/log/" ;; *) fail "the node is \"$state\", not idle; see $dir/log/" ;; esac
echo "SLURM_CONF=$conf"
