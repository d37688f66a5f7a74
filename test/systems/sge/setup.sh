#!/bin/bash
# Start a single-node Grid Engine on localhost for the tests: sge_qmaster and
# sge_execd from Debian's gridengine packages, a PE "smp" ($pe_slots) and a
# queue all.q with 2 slots. Idempotent: a second run reuses running daemons.
# Installs the packages when missing and fails with the reason when it cannot.
# Prints SGE_ROOT=, SGE_CELL=. Stop with teardown.sh (by pid files).
set -euo pipefail
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
work=${VMPILOT_SGE_DIR:-/tmp/vmpilot-sge}
fail() { echo "grid engine setup: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "must run as root (installs packages, starts daemons)"
mkdir -p "$work"

. "$(dirname "$0")/../lib.sh"
if ! dpkg-query -W -f '${Status}' gridengine-client 2>/dev/null | grep -q 'install ok installed'; then
  if dpkg-query -W -f '${Status}' slurm-wlm-torque 2>/dev/null | grep -q 'install ok installed'; then
    fail "slurm-wlm-torque is installed and conflicts with gridengine-client; remove it first (apt-get remove slurm-wlm-torque)"
  fi
fi
sge_preseed
apt_install gridengine-master gridengine-exec gridengine-client
common=$SGE_ROOT/$SGE_CELL/common
[ -d "$common" ] || fail "$common is missing: the gridengine postinst did not set up the cell"
# the host is "vm" but resolves to localhost: tell Grid Engine they are one host
echo "localhost $(hostname)" > "$common/host_aliases"
echo localhost > "$common/act_qmaster"

spool_pid() { # the pid file of a daemon
  case $1 in
  qmaster) echo "/var/spool/gridengine/qmaster/qmaster.pid" ;;
  execd) echo "/var/spool/gridengine/execd/localhost/execd.pid" ;;
  esac
}
alive() { local f; f=$(spool_pid "$1"); [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }

if ! alive qmaster; then
  /usr/sbin/sge_qmaster || fail "sge_qmaster did not start"
fi
# about 2 s on a quiet machine; allow a minute on a loaded one
for _ in $(seq 600); do qstat -g c >/dev/null 2>&1 && break; sleep 0.1; done
qstat -g c >/dev/null 2>&1 || fail "sge_qmaster does not answer (qstat)"

# configuration (idempotent: -M modifies, -A adds only what is missing)
qconf -sconf global > "$work/global"
sed -i -e 's/^min_uid .*/min_uid 0/' -e 's/^min_gid .*/min_gid 0/' "$work/global"
# write the accounting file (qacct) every second, not every 15 s
sed -i -e 's/flush_time=[0-9:]*/flush_time=00:00:01/' "$work/global"
grep -q accounting_flush_time "$work/global" || sed -i 's/reporting_params *accounting=true/&  accounting_flush_time=00:00:01/' "$work/global"
qconf -Mconf "$work/global" >/dev/null 2>&1 || fail "qconf -Mconf (min_uid 0) failed"
qconf -ssconf > "$work/sched.conf"
sed -i 's/^schedule_interval .*/schedule_interval 0:0:1/' "$work/sched.conf"
qconf -Msconf "$work/sched.conf" >/dev/null 2>&1 || fail "qconf -Msconf failed"
qconf -ss 2>/dev/null | grep -qx localhost || qconf -as localhost >/dev/null 2>&1
if ! qconf -sel 2>/dev/null | grep -qx localhost; then
  cat > "$work/exec.conf" <<CONF
hostname              localhost
load_scaling          NONE
complex_values        NONE
user_lists            NONE
xuser_lists           NONE
projects              NONE
xprojects             NONE
usage_scaling         NONE
report_variables      NONE
CONF
  qconf -Ae "$work/exec.conf" >/dev/null 2>&1 || fail "qconf -Ae failed"
fi
if ! qconf -spl 2>/dev/null | grep -qx smp; then
  cat > "$work/pe.conf" <<CONF
pe_name            smp
slots              999
user_lists         NONE
xuser_lists        NONE
start_proc_args    NONE
stop_proc_args     NONE
allocation_rule    \$pe_slots
control_slaves     FALSE
job_is_first_task  TRUE
urgency_slots      min
accounting_summary FALSE
qsort_args         NONE
CONF
  qconf -Ap "$work/pe.conf" >/dev/null 2>&1 || fail "qconf -Ap failed"
fi
if ! qconf -sql 2>/dev/null | grep -qx all.q; then
  cat > "$work/queue.conf" <<CONF
qname                 all.q
hostlist              localhost
seq_no                0
load_thresholds       NONE
suspend_thresholds    NONE
nsuspend              1
suspend_interval      00:05:00
priority              0
min_cpu_interval      00:05:00
processors            UNDEFINED
qtype                 BATCH INTERACTIVE
ckpt_list             NONE
pe_list               smp
rerun                 FALSE
slots                 2
tmpdir                /tmp
shell                 /bin/bash
prolog                NONE
epilog                NONE
shell_start_mode      posix_compliant
starter_method        NONE
suspend_method        NONE
resume_method         NONE
terminate_method      NONE
notify                00:00:60
owner_list            NONE
user_lists            NONE
xuser_lists           NONE
subordinate_list      NONE
complex_values        NONE
projects              NONE
xprojects             NONE
calendar              NONE
initial_state         default
s_rt                  INFINITY
h_rt                  INFINITY
s_cpu                 INFINITY
h_cpu                 INFINITY
s_fsize               INFINITY
h_fsize               INFINITY
s_data                INFINITY
h_data                INFINITY
s_stack               INFINITY
h_stack               INFINITY
s_core                INFINITY
h_core                INFINITY
s_rss                 INFINITY
h_rss                 INFINITY
s_vmem                INFINITY
h_vmem                INFINITY
CONF
  qconf -Aq "$work/queue.conf" >/dev/null 2>&1 || fail "qconf -Aq failed"
fi
if ! alive execd; then
  /usr/sbin/sge_execd || fail "sge_execd did not start"
fi
# jobs or an error state left by an earlier run: this cluster is the tests' own, clear them
qdel -f -u '*' '*' >/dev/null 2>&1 || true
qmod -cq all.q >/dev/null 2>&1 || true
# wait until the queue instance has no state flags (no "au": execd has reported in)
ready() { qstat -f -q all.q@localhost 2>/dev/null | grep -Eq '^all\.q@localhost +BIP +0/0/2 +[^ ]+ +[^ ]+ *$'; }
for _ in $(seq 1200); do ready && break; sleep 0.1; done
ready || fail "queue all.q@localhost is not ready after 120 s: $(qstat -f 2>&1 | tail -3)"
echo "SGE_ROOT=$SGE_ROOT"
echo "SGE_CELL=$SGE_CELL"
