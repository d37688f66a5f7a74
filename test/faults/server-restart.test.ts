import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, onTestFailed } from 'vitest';
import { admin, freePort, kill, killAll, startAgent, startServer, tempDir, waitFor, type Proc, type Server } from '../integration/harness.js';
import { failedCalls, haltDecision } from './agent-log.js';
import { audit, logged, readRuns } from './audit.js';
import { between, faultSeed, seeded } from './seeded.js';

const PAYLOADS = 200;
const AGENTS = 3;
const CORES = 4;
const IDLE_SEC = 3;
const KILLS = 4;

const ended = (log: string) => [...readRuns(log).runs.values()].flat().filter((r) => r.endNs !== null).length;

describe('fault: the server is SIGKILLed and restarted (same database and port) several times under a queue of short payloads', () => {
  const tmp = tempDir('vmpilot-fault-restart-');
  afterEach(() => killAll());
  afterAll(() => tmp.cleanup());

  it('no pilot halts for lack of work while work is queued; every payload ends done, once', async () => {
    const seed = faultSeed(24);
    const random = seeded(seed);
    // the moments: after so many payload runs ended (spread over the workload), one outage longer than the idle timeout
    const at = new Set<number>();
    while (at.size < KILLS) at.add(between(random, Math.round(PAYLOADS * 0.05), Math.round(PAYLOADS * 0.95)));
    const long = between(random, 0, KILLS - 1);
    const plan = [...at].sort((a, b) => a - b).map((afterEnded, i) => ({ afterEnded, failures: i === long ? 0 : between(random, 1, 3), long: i === long }));
    console.log(`server-restart fault: seed ${seed} (VMPILOT_FAULT_SEED), plan ${JSON.stringify(plan)}`);

    const db = path.join(tmp.dir, 'server.db');
    const port = await freePort();
    const extra = ['--listen', `127.0.0.1:${port}`];
    let server: Server = await startServer(db, extra);
    const url = server.url;
    const api = () => admin(url);
    const log = path.join(tmp.dir, 'runs.log');
    const ids: number[] = [];
    for (let i = 0; i < PAYLOADS; i++) ids.push(await api().submit({ command: logged(log, (1 + between(random, 0, 3)) / 10), name: `r${i}` }));
    const agents: Proc[] = [];
    for (let n = 0; n < AGENTS; n++) agents.push(startAgent(url, { cores: CORES, idleTimeoutSec: IDLE_SEC, stateDir: path.join(tmp.dir, `agent-${n}`) }));
    const running = () => agents.filter((a) => a.child.exitCode === null && a.child.signalCode === null);
    onTestFailed(() => {
      for (const [n, a] of agents.entries()) console.error(`agent ${n}:\n${a.stderr().slice(-5000)}`);
    });

    for (const step of plan) {
      await waitFor(`${step.afterEnded} payload runs to end`, () => ended(log) >= step.afterEnded || running().length === 0, 60_000);
      if (running().length === 0) break; // every pilot gave up: the checks below say why
      const from = agents.map((a) => a.stderr().length);
      const killedAt = Date.now();
      kill(server.child);
      await server.exited;
      if (step.long) {
        // down for longer than the idle timeout, as the agents themselves saw it: each logged a failed call that late
        const late = killedAt + (IDLE_SEC + 1) * 1000;
        await waitFor('every agent to see the server away for longer than its idle timeout', () =>
          agents.every((a, n) => a.child.exitCode !== null || failedCalls(a, from[n]).some((l) => l.time >= late)),
        );
      } else {
        await waitFor(`every agent to see ${step.failures} failed call(s)`, () =>
          agents.every((a, n) => a.child.exitCode !== null || failedCalls(a, from[n]).length >= step.failures),
        );
      }
      server = await startServer(db, extra);
    }

    const exits = await Promise.all(agents.map((a) => a.exited));
    const jobs = await api().jobs();
    // the queue was empty from the last moment a payload was handed out
    const emptyFrom = Math.max(...jobs.map((j) => j.assignedAt ?? Infinity));
    for (const [n, a] of agents.entries()) {
      expect(exits[n]!.code, `agent ${n} exit status`).toBe(0);
      const halt = haltDecision(a);
      expect(halt, `agent ${n} halt`).toMatchObject({ code: 300 });
      expect(halt!.time, `agent ${n} halted for lack of work (${halt!.reason}) while ${jobs.filter((j) => j.state === 'queued').length} payloads were queued`).toBeGreaterThan(emptyFrom);
    }
    const pilots = await api().pilots();
    expect(pilots).toHaveLength(AGENTS);
    for (const p of pilots) expect(p).toMatchObject({ state: 'halted', shutdownCode: 300 });
    const result = audit(ids, jobs, log);
    expect(result.violations).toEqual([]);
    expect(result.byState).toEqual({ done: PAYLOADS });
    await server.stop();
  }, 240_000);
});
