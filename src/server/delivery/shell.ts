/**
 * The shell both bootstrap paths share (batch scripts and cloud-init):
 * quoting, and the functions that download the agent from the server, check
 * its sha256 against the manifest before anything runs, unpack it and keep it
 * in a cache named by its hash (a second job on the node reuses it).
 */
import type { AgentFile } from './manifest.js';

/** Quote a value for POSIX sh: single quotes, with ' written as '\''. */
export function shq(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** What the fetch functions need to know about the agent file. */
export interface AgentRef {
  /** The file under /v1/agent/ (e.g. vmpilot-linux-x64.gz). */
  file: string;
  /** sha256 of that file as downloaded. */
  sha256: string;
  /** sha256 of what runs (the unpacked executable; the same as sha256 when not compressed). */
  runSha256: string;
  /** `executable` runs by itself; `bundle` needs node 20+. */
  kind: 'executable' | 'bundle';
}

/** The AgentRef of a manifest entry. */
export function agentRef(file: AgentFile): AgentRef {
  return { file: file.name, sha256: file.sha256, runSha256: file.unpacked?.sha256 ?? file.sha256, kind: file.kind };
}

/** Shell variable assignments for the agent file (values already checked). */
export function agentVars(server: string, agent: AgentRef): string {
  return [
    `VMPILOT_SERVER=${shq(server)}`,
    `vmpilot_agent_file=${shq(agent.file)}`,
    `vmpilot_agent_sha256=${shq(agent.sha256)}`,
    `vmpilot_agent_run_sha256=${shq(agent.runSha256)}`,
    `vmpilot_agent_kind=${shq(agent.kind)}`,
  ].join('\n');
}

/**
 * sh functions: `vmpilot_fail MSG` (exit 15, the exit status of shutdown
 * code 500), `vmpilot_install_agent CACHE_DIR` (sets VMPILOT_AGENT to a
 * verified agent) and `vmpilot_agent_command` (prints how to run it).
 * Needs VMPILOT_SERVER, VMPILOT_PILOT_TOKEN and the vmpilot_agent_* variables.
 * The token reaches curl on its stdin and wget in a private config file,
 * never on a command line (which every process on the node can read).
 */
export const FETCH_FUNCTIONS = String.raw`vmpilot_fail() {
  echo "vmpilot bootstrap: $*" >&2
  if [ -n "${'$'}{JOBOUTPUTS:-}" ]; then echo "500 Environment or bootstrap problem: $*" > "$JOBOUTPUTS/shutdown_message" 2>/dev/null || true; fi
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
}`;
