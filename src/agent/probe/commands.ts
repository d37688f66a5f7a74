/**
 * `vmpilot probe` and `vmpilot mjf`: read every source once and print what
 * the agent would offer, where each value came from, and its deadline. A
 * value the site's MJF cannot give now but the agent of this state
 * directory last read well (`<state-dir>/mjf-read.json`) is shown, marked
 * stale: it is what that agent goes by.
 */
import { systemClock } from '../../shared/clock.js';
import { probeIsolation, type IsolationProbe } from '../isolation/probe.js';
import { OUTER_PATH } from '../isolation/sandbox.js';
import { createLogger } from '../../shared/log.js';
import { loadConfigWithFile } from '../config/load.js';
import { lastKnownFile } from '../mjf/last-known.js';
import { systemCommandRunner } from '../executor/command-runner.js';
import { NodeResources, type ResourceView } from '../resources/node-resources.js';
import { readInventory } from './inventory.js';
import { nodeProbe } from './node-probe.js';
import { formatCapabilities } from './capabilities.js';
import { formatResources } from './offered.js';

async function readView(flags: Record<string, unknown>): Promise<ResourceView> {
  return (await readAll(flags, false)).view;
}

/** The resources and, when asked, the isolation the agent would use (the same probes as `vmpilot run`). */
async function readAll(flags: Record<string, unknown>, isolation: boolean): Promise<{ view: ResourceView; isolation: IsolationProbe | null }> {
  const config = await loadConfigWithFile({ flags });
  const log = createLogger({ level: config.logLevel }).child({ role: 'probe' });
  const source = new NodeResources({
    config,
    probe: nodeProbe,
    log,
    startedAt: systemClock.now(),
    run: systemCommandRunner(config.batchEnv),
    clock: systemClock,
    // read only: the file is the running agent's
    lastKnown: { file: lastKnownFile(config.stateDir), save: false },
  });
  const [view, iso] = await Promise.all([
    source.init(),
    isolation ? probeIsolation({ choice: config.isolation, payloadUser: config.payloadUser, run: systemCommandRunner({ PATH: OUTER_PATH }) }) : null,
  ]);
  return { view, isolation: iso };
}

/** The isolation as printed: the mode and containment chosen, why not better, and what was tried. */
function isolationOut(p: IsolationProbe) {
  const { facts } = p;
  return {
    mode: p.plan.mode,
    containment: p.plan.containment,
    ...(p.plan.account ? { payloadUser: p.plan.account.name } : {}),
    notes: p.plan.notes,
    tried: { root: facts.root, slotAccounts: facts.slotAccounts, cgroup: facts.cgroup, bwrap: facts.bwrap, unshare: facts.unshare },
  };
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The deadline as printed: when, which limit set it, and every limit considered. */
function deadlineOut(v: ResourceView) {
  return { at: v.deadline.at, iso: iso(v.deadline.at), source: v.deadline.source, candidates: v.deadline.candidates.map((c) => ({ ...c, iso: iso(c.at) })) };
}

/** The values kept after a failed read, by side: the problem, since when, and the last good read. */
function staleOut(v: ResourceView) {
  const side = (s: 'machine' | 'job') =>
    Object.fromEntries(Object.entries(v.features.stale[s]).map(([k, st]) => [k, { value: v.features[s][k], problem: st.problem, since: iso(st.since), readAt: iso(st.readAt) }]));
  return { machine: side('machine'), job: side('job') };
}

/** `vmpilot probe [--json]`. */
export async function probeCommand(flags: Record<string, unknown>): Promise<void> {
  const [{ view: v, isolation }, inventory] = await Promise.all([readAll(flags, true), readInventory()]);
  const isolated = isolationOut(isolation!);
  if (flags.json) {
    const out = {
      ...v.offered,
      capabilities: v.capabilities,
      cgroup: v.cgroup,
      batch: v.batch,
      mjf: { sources: v.features.sources, stale: staleOut(v), problems: v.features.problems },
      deadline: deadlineOut(v),
      isolation: isolated,
      inventory,
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return;
  }
  const lines = [
    formatResources(v.offered).trimEnd(),
    formatCapabilities(v.capabilities),
    `cgroup    ${v.cgroup.version === null ? 'none found' : `v${v.cgroup.version}`}${v.cgroup.cores !== null ? `, ${v.cgroup.cores} cores` : ''}${v.cgroup.memoryBytes !== null ? `, ${Math.floor(v.cgroup.memoryBytes / 1048576)} MiB` : ''}`,
    `batch     ${v.batch ? `${v.batch.system} job ${v.batch.jobId}${v.batch.cores !== null ? `, ${v.batch.cores} cores` : ''}${v.batch.endsAt !== null ? `, ends ${iso(v.batch.endsAt)}` : ''}` : 'none'}`,
    `deadline  ${v.deadline.at === null ? 'none' : `${iso(v.deadline.at)} (${v.deadline.source})`}`,
    `isolation ${isolated.mode}${isolated.payloadUser ? ` (${isolated.payloadUser})` : ''}, payload processes held by ${isolated.containment}${isolated.notes.length ? `; ${isolated.notes.join('; ')}` : ''}`,
    `node      ${[inventory.cpuModel, inventory.os, inventory.virtual === null ? null : inventory.virtual ? `virtual${inventory.hypervisor ? ` (${inventory.hypervisor})` : ''}` : 'physical'].filter(Boolean).join('; ')}`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
}

/** `vmpilot mjf [--json]`: what Machine/Job Features say, from where, and the deadline. */
export async function mjfCommand(flags: Record<string, unknown>): Promise<void> {
  const v = await readView(flags);
  const stale = staleOut(v);
  const out = {
    machine: { source: v.features.sources.machine, values: v.features.machine, stale: stale.machine },
    job: { source: v.features.sources.job, values: v.features.job, stale: stale.job },
    problems: v.features.problems,
    deadline: deadlineOut(v),
  };
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return;
  }
  const side = (name: string, s: { source: string | null; values: Record<string, number | string>; stale: Record<string, { readAt: string | null }> }) => [
    `${name} features: ${s.source ?? 'not given'}`,
    ...Object.entries(s.values).map(([k, val]) => `  ${k.padEnd(20)} ${val}${k in s.stale ? ` (stale: last read ${s.stale[k]!.readAt ?? 'before'})` : ''}`),
  ];
  const lines = [
    ...side('machine', out.machine),
    ...side('job', out.job),
    ...out.problems.map((p) => `problem: ${p}`),
    `deadline: ${v.deadline.at === null ? 'none' : `${iso(v.deadline.at)} (${v.deadline.source})`}`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
}
