/**
 * The agent's side effects, each behind a small port with one real adapter
 * and one fake for tests. The pilot (src/agent/pilot.ts) is wired from these
 * and from pure decision functions; nothing else in the agent spawns
 * processes, talks HTTP, reads the clock, or halts the machine.
 *
 *   port            real adapter                                  fake
 *   Clock           shared/clock.ts systemClock                   FakeClock
 *   ControlPlane    control/http-control-plane.ts, mailbox-...    control/fake-control-plane.ts
 *   ProcessRunner   executor/process-runner.ts (payload/wrapped-runner.ts over it)   executor/fake-process-runner.ts
 *   CommandRunner   executor/command-runner.ts                    a function in the test
 *   NodeProbe       probe/node-probe.ts nodeProbe                 FakeProbe
 *   Halter          halt/halter.ts processHalter                  FakeHalter
 *   StateStore      state/file-store.ts                           state/memory-store.ts
 *   JobOutputs      halt/job-outputs.ts (directory or URL)        MemoryOutputs
 *   UsageProbe      probe/usage.ts procUsage                      noUsage
 *   DrainFiles      probe/drain-files.ts fileDrainFiles           an object in the test
 *   FeatureFetcher  mjf/reader.ts (directory or URL)              a function in the test
 *   ResourceSource  resources/node-resources.ts                   an object in the test
 * ResourceSource (what PilotResources reads: MJF, batch, cgroup layered over
 * the probe) is declared next to it, as its types are the resources' own.
 */
import type {
  Assignment,
  HeartbeatReply,
  HeartbeatRequest,
  MatchReply,
  MatchRequest,
  RegisterReply,
  RegisterRequest,
  Report,
  ReportsReply,
} from '../protocol/index.js';

export type { Clock } from '../shared/clock.js';

/** What a command did: its exit code (null when it could not run, timed out or was killed) and stdout. */
export interface CommandResult {
  exitCode: number | null;
  stdout: string;
  /** Why it failed, when it did. */
  error?: string;
  /** With `tail`: the last of its stdout and stderr as they came; absent when it could not start. */
  output?: string;
}

/** How to run a command besides its argv and time limit. */
export interface CommandOptions {
  /** Its working directory (default: the agent's). */
  cwd?: string;
  /** Its whole environment (default: the one the runner was made with). */
  env?: Readonly<Record<string, string>>;
  /**
   * Keep only the tail of stdout and stderr (`output`) instead of stdout, with
   * no cap on what it prints; it runs in its own process group, all of which
   * is killed at the time limit (a setup command and what it started).
   */
  tail?: boolean;
}

/** Runs `argv` (no shell) for at most `timeoutMs`. Never throws. */
export type CommandRunner = (argv: readonly string[], timeoutMs: number, o?: CommandOptions) => Promise<CommandResult>;

/** The control plane: the companion server, over HTTP (real) or in memory (fake). */
export interface ControlPlane {
  /** Register with the registration token; later calls carry the credential it returns. */
  register(request: RegisterRequest): Promise<RegisterReply>;
  /** Tell the server how the pilot is; the reply carries instructions and the next interval. */
  heartbeat(request: HeartbeatRequest): Promise<HeartbeatReply>;
  /** Ask for work; the server may hold this open up to `request.waitSec`. Aborting it is safe. */
  match(request: MatchRequest, signal?: AbortSignal): Promise<MatchReply>;
  /** Deliver reports in order; the server applies each seq once. */
  report(reports: Report[]): Promise<ReportsReply>;
  /** Carry on as a pilot registered before (after an agent restart): later calls use this id and credential. */
  resume(pilotId: number, credential: string): void;
}

/** What to start for one payload. */
export interface ProcessSpec {
  command: string[];
  cwd: string;
  env: Record<string, string>;
  /** Files that receive the process's stdout and stderr. */
  stdoutPath: string;
  stderrPath: string;
  /** Run as this user and group when set (the agent runs as root). */
  uid?: number;
  gid?: number;
  /** Kill the whole tree when its memory passes this (MiB); null or absent: no limit. */
  memoryLimitMb?: number | null;
  /** Cap each of stdoutPath and stderrPath at this many bytes (older output is dropped). */
  maxOutputBytes?: number;
  /** Hold the tree in a cgroup it cannot leave (the agent is root, the payload is not); killed whole at the end. */
  contain?: boolean;
  /** `uid` belongs to this payload alone: every process running as it is killed when the payload ends. */
  sweepUid?: boolean;
  /**
   * Start the command inside this sandbox (isolation/sandbox.ts): `prefix`
   * (bwrap or unshare) goes right before `command`, inside the payload
   * wrapper; everything outside the sandbox runs with `outerEnv` only, and
   * the payload's `env` reaches it through `envFile` (written beforehand),
   * read by the last step inside. SIGTERM then goes to the processes inside
   * the sandbox only.
   */
  sandbox?: { prefix: string[]; envFile: string; outerEnv: Record<string, string> };
  /** The command already runs in a sandbox (a wrapper put `sandbox` in). */
  sandboxed?: boolean;
}

/** How a process ended: an exit code, or the signal that killed it. */
export interface ProcessExit {
  exitCode: number | null;
  signal: string | null;
  /** The tree passed its memory limit and was killed. */
  overMemory?: boolean;
  /** CPU seconds of the tree, as far as sampling saw. */
  cpuSec?: number;
  /** Largest resident memory of the tree, MiB. */
  peakRssMb?: number;
  /** Output was dropped, and why ("output truncated: no space left on device"). */
  outputTruncated?: string;
}

/** A payload process, the leader of its own process group. */
export interface PayloadProcess {
  readonly pid: number;
  /** Settles when the leader exits (never rejects). */
  readonly exited: Promise<ProcessExit>;
  /**
   * Send a signal to the whole process tree: its group, its descendants and
   * those that detached into their own groups or sessions; false when it
   * was already gone.
   */
  signalGroup(signal: NodeJS.Signals): boolean;
}

/** Starts payload processes. */
export interface ProcessRunner {
  /** Start a process in its own group; throws VMP_SPAWN when it cannot start. */
  start(spec: ProcessSpec): Promise<PayloadProcess>;
}

/** The node as the agent sees it at one moment. */
export interface NodeSnapshot {
  cores: number;
  memoryMb: { total: number; free: number };
  diskFreeMb: number | null;
  load: [number, number, number];
  uptimeSec: number;
  hostname: string;
}

/** Reads the node's resources. */
export interface NodeProbe {
  /** Cheap (reads /proc, os and statfs); called on every heartbeat. */
  snapshot(workDir: string): Promise<NodeSnapshot>;
}

/** What the agent does last: power the machine off, exit, or run a command. */
export type HaltAction = { kind: 'exit' } | { kind: 'poweroff' } | { kind: 'command'; command: string };

/** Carries out the halt action (the last thing the agent does). */
export interface Halter {
  /**
   * Carry out the halt action. For `exit` this ends the process with
   * `exitStatus`; for the others it runs the command and then exits.
   * `problem`: the agent could not start (its registration was refused, the
   * server stayed unreachable, a bootstrap step failed): said first in one
   * plain line on stderr, `vmpilot: error: <problem>`, as every command's
   * errors are.
   */
  halt(action: HaltAction, exitStatus: number, problem?: string): Promise<never>;
}

/**
 * The agent's durable state: enough to restart without running a payload
 * twice or losing a report. Saved atomically (temp file + rename) after
 * every change.
 */
export interface AgentState {
  /** Server and pilot this state belongs to. */
  server: string;
  pilotId: number | null;
  credential: string | null;
  /** The last report seq used. */
  seq: number;
  /** Reports not yet acknowledged by the server, in seq order. */
  outbox: Report[];
  /** Payloads started and not yet reported ended: id → what is needed to re-attach, and the GPU ids it holds (none twice). */
  running: Record<string, { pid: number; cores: number; startedAt: number; dir: string; assignment?: Assignment; gpus?: string[] }>;
  /** The lease the server gave at register (RegisterReply.leaseSec), seconds; kept so a restart keeps fencing. */
  leaseSec?: number | null;
  /** The server takes `evicted` on payload-ended (RegisterReply.acceptsEvicted); kept so a restart keeps sending it. */
  acceptsEvicted?: boolean;
  /** When this pilot halted (its shutdown report was made); a restart after it registers anew. */
  haltedAt?: number | null;
  /** Ids of payloads this pilot has ever started (never start one twice). */
  started: number[];
  /** Ids of instructions already carried out (never carry one out twice). */
  instructionsDone: number[];
}

/** Where the agent keeps its durable state and its last words. */
export interface StateStore {
  /** The saved state, or null when there is none yet. */
  load(): Promise<AgentState | null>;
  /** Save atomically: after a crash either the old or the new state is there, never half. */
  save(state: AgentState): Promise<void>;
  /** Write the `shutdown_message` file ("NNN text"). */
  writeShutdownMessage(line: string): Promise<void>;
}

/** Where `heartbeat` and `shutdown_message` go besides the state directory. */
export interface JobOutputs {
  /** Write (replace) file `name` with `content`; throws VMP_STATE when it cannot. */
  put(name: string, content: string): Promise<void>;
}

/** Finds a drain file. */
export interface DrainFiles {
  /** The first drain file that exists, or null. */
  present(): Promise<string | null>;
}

/** Jiffies the node spent busy and in total, from the `cpu` line of /proc/stat. */
export interface CpuTimes {
  busy: number;
  total: number;
}

/** One process group's use. */
export interface GroupUsage {
  cpuSec: number;
  rssMb: number;
}

/** One reading of the node and of the payload groups. */
export interface UsageSample {
  cpu: CpuTimes | null;
  groups: Map<number, GroupUsage>;
}

/** Reads usage; `pgids` are the process groups of the payloads. */
export interface UsageProbe {
  sample(pgids: readonly number[]): Promise<UsageSample>;
}

/** What tells whether a key changed since it was read: a stat signature (directory) or HTTP validators (URL). */
export interface FeatureValidator {
  stat?: string;
  etag?: string;
  lastModified?: string;
}

/** The raw text of one key: found, unchanged since `validator`, absent (normal), or an error naming what failed. */
export type RawFeature =
  | { kind: 'found'; text: string; validator?: FeatureValidator }
  | { kind: 'unchanged' }
  | { kind: 'absent' }
  | { kind: 'error'; problem: string };

/** Fetches one key from a base (directory or URL); given the validator of the last read, it may answer 'unchanged'. */
export type FeatureFetcher = (base: string, key: string, validator?: FeatureValidator) => Promise<RawFeature>;
