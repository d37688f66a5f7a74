#!/bin/bash
#$ -N vmpilot
#$ -S /bin/bash
#$ -cwd
#$ -j y
#$ -pe smp 1
#$ -l h_rt=01:00:00,s_rt=00:55:00
#
# vmpilot pilot job for sge, made by vmpilot-server batch-script 0.1.0.
# Fetches the agent from the server, checks its sha256 before running it, and
# runs it until there is no more work: it exits 0 when it halted normally,
# 15 on a bootstrap or environment problem (shutdown code 500).
set -eu
VMPILOT_SERVER='https://pilots.example.org:8080'
vmpilot_agent_file='vmpilot-linux-x64.gz'
vmpilot_agent_sha256='1111111111111111111111111111111111111111111111111111111111111111'
vmpilot_agent_run_sha256='2222222222222222222222222222222222222222222222222222222222222222'
vmpilot_agent_kind='executable'
vmpilot_agent_size='32782431'
export VMPILOT_PILOT_TOKEN='REPLACE-WITH-THE-PILOT-REGISTRATION-TOKEN'
walltime=3600
lifetime=$walltime
job_id=${JOB_ID:-$$}
cores=${NSLOTS:-}
cache="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/vmpilot"
work="${TMPDIR:-/tmp}/vmpilot-job-$job_id"

vmpilot_say() { echo "vmpilot bootstrap: $*" >&2; }
vmpilot_fail() {
  vmpilot_say "$*"
  if [ -n "${JOBOUTPUTS:-}" ]; then echo "500 Environment or bootstrap problem: $*" > "$JOBOUTPUTS/shutdown_message" 2>/dev/null || true; fi
  exit 15
}
vmpilot_sha256() { sha256sum "$1" | cut -d' ' -f1; }
vmpilot_mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
vmpilot_size_of() { if [ -f "$1" ]; then wc -c < "$1" | tr -d ' '; else echo 0; fi; }
vmpilot_python_get() {
  python3 - "$1" "$2" <<'VMPILOT_PY'
import os, ssl, sys, time, urllib.request
url, out = sys.argv[1], sys.argv[2]
ctx = ssl.create_default_context(cafile=os.environ.get("VMPILOT_CA_FILE") or None)
for attempt in range(5):
    try:
        req = urllib.request.Request(url, headers={"Authorization": "Bearer " + os.environ["VMPILOT_PILOT_TOKEN"]})
        with urllib.request.urlopen(req, context=ctx, timeout=60) as r, open(out, "wb") as f:
            while True:
                chunk = r.read(1 << 16)
                if not chunk:
                    sys.exit(0)
                f.write(chunk)
    except Exception as e:
        print("vmpilot bootstrap: python3: %s" % e, file=sys.stderr)
        time.sleep(2)
sys.exit(1)
VMPILOT_PY
}
vmpilot_pick_tool() {
  for vmpilot_t in curl wget python3; do
    if command -v "$vmpilot_t" >/dev/null 2>&1; then echo "$vmpilot_t"; return 0; fi
  done
  vmpilot_fail "none of curl, wget or python3 is installed: cannot download the agent"
}
vmpilot_download() {
  if [ -z "${vmpilot_tool:-}" ]; then vmpilot_tool=$(vmpilot_pick_tool) || exit 15; fi
  if [ "$vmpilot_tool" = curl ]; then
    printf 'header = "Authorization: Bearer %s"\n' "$VMPILOT_PILOT_TOKEN" |
      curl -fsS --retry 5 --retry-delay 2 --retry-connrefused ${VMPILOT_CA_FILE:+--cacert "$VMPILOT_CA_FILE"} -C - -K - -o "$2" "$1"
  elif [ "$vmpilot_tool" = wget ]; then
    vmpilot_wgetrc=$(mktemp) || vmpilot_fail "cannot create a temporary file for wget"
    printf 'header = Authorization: Bearer %s\n' "$VMPILOT_PILOT_TOKEN" > "$vmpilot_wgetrc"
    vmpilot_status=0
    wget -q -c --tries=5 --waitretry=2 --retry-connrefused --config="$vmpilot_wgetrc" ${VMPILOT_CA_FILE:+--ca-certificate="$VMPILOT_CA_FILE"} -O "$2" "$1" || vmpilot_status=$?
    rm -f "$vmpilot_wgetrc"
    return $vmpilot_status
  else
    vmpilot_python_get "$1" "$2"
  fi
}
vmpilot_fetch() {
  vmpilot_tool=$(vmpilot_pick_tool) || exit 15
  vmpilot_say "downloading $1${vmpilot_agent_size:+ ($(vmpilot_mib "$vmpilot_agent_size") MiB)} with $vmpilot_tool${VMPILOT_CA_FILE:+, trusting the CA in $VMPILOT_CA_FILE}"
  vmpilot_t0=$(date +%s)
  vmpilot_download "$1" "$2" &
  vmpilot_pid=$!
  vmpilot_next=25
  vmpilot_ticks=0
  while kill -0 "$vmpilot_pid" 2>/dev/null; do
    sleep 1
    vmpilot_got=$(vmpilot_size_of "$2")
    vmpilot_ticks=$((vmpilot_ticks + 1))
    if [ -t 2 ]; then
      printf '\rvmpilot bootstrap: %s MiB%s ' "$(vmpilot_mib "$vmpilot_got")" "${vmpilot_agent_size:+ of $(vmpilot_mib "$vmpilot_agent_size") MiB ($((vmpilot_got * 100 / vmpilot_agent_size)) %)}" >&2
    elif [ -n "$vmpilot_agent_size" ]; then
      while [ "$vmpilot_next" -lt 100 ] && [ $((vmpilot_got * 100)) -ge $((vmpilot_agent_size * vmpilot_next)) ]; do
        vmpilot_say "$vmpilot_next % ($(vmpilot_mib "$vmpilot_got") of $(vmpilot_mib "$vmpilot_agent_size") MiB)"
        vmpilot_next=$((vmpilot_next + 25))
      done
    elif [ $((vmpilot_ticks % 10)) -eq 0 ]; then
      vmpilot_say "$(vmpilot_mib "$vmpilot_got") MiB so far"
    fi
  done
  vmpilot_status=0
  wait "$vmpilot_pid" || vmpilot_status=$?
  if [ -t 2 ]; then printf '\n' >&2; fi
  if [ "$vmpilot_status" -ne 0 ]; then return "$vmpilot_status"; fi
  vmpilot_got=$(vmpilot_size_of "$2")
  vmpilot_say "100 % ($(vmpilot_mib "$vmpilot_got") MiB in $(($(date +%s) - vmpilot_t0)) s)"
}
vmpilot_install_agent() {
  vmpilot_cache=$1
  VMPILOT_AGENT="$vmpilot_cache/vmpilot-$vmpilot_agent_run_sha256"
  if [ -f "$VMPILOT_AGENT" ] && [ "$(vmpilot_sha256 "$VMPILOT_AGENT")" = "$vmpilot_agent_run_sha256" ]; then
    vmpilot_say "agent $VMPILOT_AGENT from the cache (sha256 checked)"
    return 0
  fi
  mkdir -p "$vmpilot_cache" || vmpilot_fail "cannot create the agent cache $vmpilot_cache"
  vmpilot_part="$vmpilot_cache/.$vmpilot_agent_file.$$.part"
  rm -f "$vmpilot_part" "$vmpilot_part.out"
  vmpilot_fetch "$VMPILOT_SERVER/v1/agent/$vmpilot_agent_file" "$vmpilot_part" ||
    { rm -f "$vmpilot_part"; vmpilot_fail "cannot download $VMPILOT_SERVER/v1/agent/$vmpilot_agent_file${VMPILOT_CA_FILE:+ (trusting only the CA in $VMPILOT_CA_FILE)}"; }
  vmpilot_got=$(vmpilot_sha256 "$vmpilot_part")
  if [ "$vmpilot_got" != "$vmpilot_agent_sha256" ]; then
    rm -f "$vmpilot_part"
    vmpilot_fail "checksum mismatch: $vmpilot_agent_file has sha256 $vmpilot_got, the manifest says $vmpilot_agent_sha256; not running it"
  fi
  case $vmpilot_agent_file in
  *.gz)
    gzip -dc "$vmpilot_part" > "$vmpilot_part.out" || { rm -f "$vmpilot_part" "$vmpilot_part.out"; vmpilot_fail "cannot unpack $vmpilot_agent_file"; }
    mv -f "$vmpilot_part.out" "$vmpilot_part"
    vmpilot_got=$(vmpilot_sha256 "$vmpilot_part")
    if [ "$vmpilot_got" != "$vmpilot_agent_run_sha256" ]; then
      rm -f "$vmpilot_part"
      vmpilot_fail "checksum mismatch: unpacked $vmpilot_agent_file has sha256 $vmpilot_got, the manifest says $vmpilot_agent_run_sha256; not running it"
    fi
    ;;
  esac
  chmod 0755 "$vmpilot_part"
  mv -f "$vmpilot_part" "$VMPILOT_AGENT"
  vmpilot_say "agent $VMPILOT_AGENT (sha256 checked)"
}
vmpilot_check_node() {
  [ "$vmpilot_agent_kind" = bundle ] || return 0
  command -v node >/dev/null 2>&1 || vmpilot_fail "the agent bundle needs Node.js 20 or newer and there is no node here; use the executable instead"
  vmpilot_node_major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$vmpilot_node_major" -ge 20 ] || vmpilot_fail "the agent bundle needs Node.js 20 or newer, this node has $(node --version)"
}

mkdir -p "$work" || vmpilot_fail "cannot create $work"
vmpilot_check_node
vmpilot_install_agent "$cache"
cd "$work"
echo "vmpilot job $job_id: agent $VMPILOT_AGENT, cores ${cores:-probed}, lifetime ${lifetime}s" >&2
exec "$VMPILOT_AGENT" run --server "$VMPILOT_SERVER" --halt exit --state-dir "$work/state" \
  --idle-timeout 300 --grace 30 --lifetime "$lifetime" --drain-before 300 ${cores:+--cores "$cores"}
