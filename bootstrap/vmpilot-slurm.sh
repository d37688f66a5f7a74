#!/bin/bash
#SBATCH --job-name=vmpilot
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=1
#SBATCH --time=01:00:00
#SBATCH --signal=B:USR1@300
#
# vmpilot pilot job for slurm, made by vmpilot-server batch-script 0.1.0.
# Fetches the agent from the server, checks its sha256 before running it, and
# runs it until there is no more work: it exits 0 when it halted normally,
# 15 on a bootstrap or environment problem (shutdown code 500).
set -eu
VMPILOT_SERVER='https://pilots.example.org:8080'
vmpilot_agent_file='vmpilot-linux-x64.gz'
vmpilot_agent_sha256='1111111111111111111111111111111111111111111111111111111111111111'
vmpilot_agent_run_sha256='2222222222222222222222222222222222222222222222222222222222222222'
vmpilot_agent_kind='executable'
export VMPILOT_PILOT_TOKEN='REPLACE-WITH-THE-PILOT-REGISTRATION-TOKEN'
walltime=3600
lifetime=$walltime
job_id=${SLURM_JOB_ID:-$$}
cores=${SLURM_CPUS_ON_NODE:-}
# Slurm sets no end-time variable: ask squeue for the time left ([D-]HH:MM:SS, MM:SS or UNLIMITED)
left=$(squeue -h -j "$job_id" -o %L 2>/dev/null || true)
case $left in
*-*:*:*) lifetime=$(( ${left%%-*} * 86400 + $(echo "${left#*-}" | awk -F: '{print $1*3600+$2*60+$3}') )) ;;
*:*:*) lifetime=$(echo "$left" | awk -F: '{print $1*3600+$2*60+$3}') ;;
*:*) lifetime=$(echo "$left" | awk -F: '{print $1*60+$2}') ;;
esac
cache="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/vmpilot"
work="${TMPDIR:-/tmp}/vmpilot-job-$job_id"

vmpilot_fail() {
  echo "vmpilot bootstrap: $*" >&2
  if [ -n "${JOBOUTPUTS:-}" ]; then echo "500 Environment or bootstrap problem: $*" > "$JOBOUTPUTS/shutdown_message" 2>/dev/null || true; fi
  exit 15
}
vmpilot_sha256() { sha256sum "$1" | cut -d' ' -f1; }
vmpilot_download() {
  if command -v curl >/dev/null 2>&1; then
    printf 'header = "Authorization: Bearer %s"\n' "$VMPILOT_PILOT_TOKEN" |
      curl -fsS --retry 5 --retry-delay 2 --retry-connrefused -C - -K - -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then
    vmpilot_wgetrc=$(mktemp) || vmpilot_fail "cannot create a temporary file for wget"
    printf 'header = Authorization: Bearer %s\n' "$VMPILOT_PILOT_TOKEN" > "$vmpilot_wgetrc"
    wget -q -c --tries=5 --waitretry=2 --retry-connrefused --config="$vmpilot_wgetrc" -O "$2" "$1"
    vmpilot_status=$?
    rm -f "$vmpilot_wgetrc"
    return $vmpilot_status
  else
    vmpilot_fail "neither curl nor wget is installed"
  fi
}
vmpilot_install_agent() {
  vmpilot_cache=$1
  VMPILOT_AGENT="$vmpilot_cache/vmpilot-$vmpilot_agent_run_sha256"
  if [ -f "$VMPILOT_AGENT" ] && [ "$(vmpilot_sha256 "$VMPILOT_AGENT")" = "$vmpilot_agent_run_sha256" ]; then
    return 0
  fi
  mkdir -p "$vmpilot_cache" || vmpilot_fail "cannot create the agent cache $vmpilot_cache"
  vmpilot_part="$vmpilot_cache/.$vmpilot_agent_file.$$.part"
  rm -f "$vmpilot_part" "$vmpilot_part.out"
  vmpilot_download "$VMPILOT_SERVER/v1/agent/$vmpilot_agent_file" "$vmpilot_part" ||
    { rm -f "$vmpilot_part"; vmpilot_fail "cannot download $VMPILOT_SERVER/v1/agent/$vmpilot_agent_file"; }
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
}
vmpilot_check_node() {
  [ "$vmpilot_agent_kind" = bundle ] || return 0
  command -v node >/dev/null 2>&1 || vmpilot_fail "the agent bundle needs Node.js 20 or newer and there is no node here; use the executable instead"
  vmpilot_node_major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$vmpilot_node_major" -ge 20 ] || vmpilot_fail "the agent bundle needs Node.js 20 or newer, this node has $(node --version)"
}

vmpilot_check_node
vmpilot_install_agent "$cache"
mkdir -p "$work" || vmpilot_fail "cannot create $work"
cd "$work"
echo "vmpilot job $job_id: agent $VMPILOT_AGENT, cores ${cores:-probed}, lifetime ${lifetime}s" >&2
exec "$VMPILOT_AGENT" run --server "$VMPILOT_SERVER" --halt exit --state-dir "$work/state" \
  --idle-timeout 300 --grace 30 --lifetime "$lifetime" ${cores:+--cores "$cores"}
