/**
 * The agent's bootstrap, wired: read the spec, then run the steps in order.
 *
 *   check-node        CheckNodeInput        → CheckNodeOutput
 *   install-software  Artifact[]            → Installed[]
 *   payload-env       spec env + software   → Record<string, string> (added to every payload's environment)
 *   setup-commands    commands + env        → { ran }
 *
 * The pilot runs this once registered, so a failure reaches the server in
 * the final report: shutdown code 500, "bootstrap step NAME failed: WHY".
 */
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/log.js';
import { installArtifact, type Installed } from './artifacts.js';
import { checkNode, realNodeFacts, type NodeFacts } from './check-node.js';
import { terminalProgress } from './download.js';
import { systemCommandRunner } from '../executor/command-runner.js';
import type { CommandRunner } from '../ports.js';
import { runSetupCommands } from './setup-commands.js';
import { readSpec, type Artifact, type BootstrapSpec } from './spec.js';
import { StepFailed, runStep, type BootstrapOutcome, type Step } from './steps.js';

/** What the bootstrap needs; the optional ports default to the real ones. */
export interface BootstrapDeps {
  stateDir: string;
  /** The payloads' base environment (setup commands run with it plus the spec's env). */
  baseEnv: Readonly<Record<string, string>>;
  clock: Clock;
  log: Logger;
  facts?: NodeFacts;
  run?: CommandRunner;
  /** Download retries and pause (tests make them short). */
  attempts?: number;
  backoffMs?: number;
  /** PEM CA certificate(s) trusted for https downloads as well as node's own (`--ca-file`). */
  ca?: Buffer | undefined;
  /** A relay whose cache http(s) artifacts are fetched through (`--artifacts-via`); null or absent: fetched directly. */
  artifactsVia?: string | null;
  /** Where progress lines go when it is a terminal (default process.stderr). */
  terminal?: NodeJS.WriteStream;
}

/**
 * The default artifact cache: shared by every agent of this user on the
 * node. As root, /var/cache/vmpilot/artifacts: root's home is closed to the
 * payload accounts, which must read what was installed.
 */
export function defaultCacheDir(uid = process.getuid?.() ?? -1): string {
  if (uid === 0) return '/var/cache/vmpilot/artifacts';
  return path.join(os.homedir() || os.tmpdir(), '.cache', 'vmpilot', 'artifacts');
}

/** Where relative artifact destinations go. */
export const softwareDir = (stateDir: string) => path.join(stateDir, 'software');

/** The steps, in order, for a spec. */
export function bootstrapSteps(spec: BootstrapSpec, d: BootstrapDeps) {
  const checkNodeStep: Step<void, unknown> = {
    name: 'check-node',
    run: () => checkNode({ dir: d.stateDir, ...spec.check }, d.facts ?? realNodeFacts),
  };
  const installStep: Step<readonly Artifact[], Installed[]> = {
    name: 'install-software',
    run: async (list) => {
      const out: Installed[] = [];
      for (const a of list) {
        out.push(
          await installArtifact(a, {
            cacheDir: spec.cacheDir,
            clock: d.clock,
            attempts: d.attempts,
            backoffMs: d.backoffMs,
            ca: d.ca,
            via: d.artifactsVia ?? null,
            progress: (name) => terminalProgress(name, d.terminal ?? process.stderr),
          }),
        );
        d.log.info({ url: a.url, dest: a.dest, cached: out.at(-1)!.cached }, 'software installed');
      }
      return out;
    },
  };
  const envStep: Step<readonly Installed[], Record<string, string>> = {
    name: 'payload-env',
    run: async () => ({ VMPILOT_SOFTWARE_DIR: softwareDir(d.stateDir), ...spec.env }),
  };
  const setupStep: Step<Record<string, string>, { ran: number }> = {
    name: 'setup-commands',
    run: (env) => runSetupCommands(spec.setup, { cwd: softwareDir(d.stateDir), env: { ...d.baseEnv, ...env }, timeoutSec: spec.setupTimeoutSec }, d.run ?? systemCommandRunner({})),
  };
  return { checkNodeStep, installStep, envStep, setupStep };
}

/** Run the bootstrap of `spec`; never throws for a failed step (the outcome says which and why). */
export async function runBootstrap(spec: BootstrapSpec, d: BootstrapDeps): Promise<BootstrapOutcome> {
  const s = bootstrapSteps(spec, d);
  const now = () => d.clock.now();
  try {
    await runStep(s.checkNodeStep, undefined, d.log, now);
    await mkdir(softwareDir(d.stateDir), { recursive: true });
    const installed = await runStep(s.installStep, spec.software, d.log, now);
    const env = await runStep(s.envStep, installed, d.log, now);
    await runStep(s.setupStep, env, d.log, now);
    return { ok: true, env };
  } catch (err) {
    if (err instanceof StepFailed) return { ok: false, step: err.step, reason: err.reason };
    throw err;
  }
}

/** Read the spec file and run it; a spec that cannot be read fails as the step "read-spec". */
export async function bootstrapFromFile(file: string, d: BootstrapDeps): Promise<BootstrapOutcome> {
  let spec: BootstrapSpec;
  try {
    spec = readSpec(file, softwareDir(d.stateDir), defaultCacheDir());
  } catch (err) {
    return { ok: false, step: 'read-spec', reason: (err as Error).message };
  }
  return runBootstrap(spec, d);
}
