/**
 * `vmpilot-server endpoint test NAME` for real: the built CLI
 * (dist/vmpilot-server.cjs) against a server (buildApp on a real SQLite
 * file, listening on 127.0.0.1) whose director has two `process`
 * endpoints: one whose agents are the built agent (every stage passes, the
 * probe runs in a real agent), one whose agent file does not exist (a named
 * stage fails with the reason; the instance is cleaned up). No agent
 * process and no undeleted instance is left.
 */
import { chmodSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../src/server/api/app.js';
import { sha256Hex } from '../../../src/server/api/auth.js';
import { resourcePrefix } from '../../../src/server/director/credential.js';
import { ProcessDriver } from '../../../src/server/director/drivers/process.js';
import type { ProcessSettings } from '../../../src/server/director/driver-settings.js';
import { endpointsFrom } from '../../../src/server/director/endpoint-config.js';
import { Director } from '../../../src/server/director/loop.js';
import { openSqliteStore, type SqliteStore } from '../../../src/server/store/sqlite.js';
import { systemClock } from '../../../src/shared/clock.js';
import { silentLogger } from '../../../src/shared/log.js';
import { ADMIN_TOKEN, AGENT, PILOT_TOKEN, SERVER, freePort, processesWith, runCommand, tempDir } from '../harness.js';

const tmp = tempDir('vmpilot-endpoint-test-');
// the agents run as root and their payloads as slot accounts, which must pass through to their directories
chmodSync(tmp.dir, 0o711);
const workDir = path.join(tmp.dir, 'instances');
const missingAgent = path.join(tmp.dir, 'no-such-agent.cjs');
// an "agent" that says nothing for longer than the server's idle socket timeout (matchWaitMaxSec + socketSlackSec = 8 s), then fails
const slowAgent = path.join(tmp.dir, 'slow-agent.cjs');
writeFileSync(slowAgent, 'setTimeout(() => process.exit(1), 12_000);\n');

let store: SqliteStore;
let app: FastifyInstance;
let director: Director;
let url: string;

beforeAll(async () => {
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  const timeouts = { bootSec: 60, registrationSec: 60, idleSec: 60, payloadGraceSec: 5 };
  const shapes = { s: { cores: 1, memoryMb: 500 } };
  const endpoints = endpointsFrom(
    {
      laptop: { driver: 'process', process: { workDir }, shapes, timeouts },
      broken: { driver: 'process', process: { workDir, agent: missingAgent }, shapes, timeouts },
      slow: { driver: 'process', process: { workDir, agent: slowAgent }, shapes, timeouts: { ...timeouts, registrationSec: 120 } },
    },
    'test.yaml',
  );
  store = openSqliteStore(path.join(tmp.dir, 'server.db'));
  const driver = (name: string, agent: string) =>
    new ProcessDriver({
      settings: endpoints.find((e) => e.name === name)!.driver as ProcessSettings,
      prefix: resourcePrefix('t', name),
      agent,
      node: process.execPath,
      baseEnv: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      clock: systemClock,
      stopGraceMs: 10_000,
    });
  director = new Director({
    store,
    clock: systemClock,
    log: silentLogger(),
    endpoints,
    drivers: new Map([
      ['laptop', driver('laptop', AGENT)],
      ['broken', driver('broken', missingAgent)],
      ['slow', driver('slow', slowAgent)],
    ]),
    directorId: 't',
    serverUrl: url,
    demandPolicy: { shares: new Map(), defaultShare: 1, defaultWallSec: 3600 },
    everyMs: 500,
  });
  app = buildApp({
    store,
    clock: systemClock,
    log: silentLogger(),
    tokens: { adminHash: sha256Hex(ADMIN_TOKEN), pilotHash: sha256Hex(PILOT_TOKEN) },
    heartbeatIntervalSec: 5,
    matchWaitMaxSec: 5,
    limits: { socketSlackSec: 3 },
    director,
    endpoints,
  });
  await app.listen({ host: '127.0.0.1', port });
  director.start();
}, 60_000);

afterAll(async () => {
  await director?.close();
  await app?.close();
  await store?.close();
  tmp.cleanup();
});

const cli = (...args: string[]) => runCommand([SERVER, 'endpoint', 'test', ...args, '--server', url], { VMPILOT_TOKEN: ADMIN_TOKEN });

/** Nothing of the endpoint's instances runs, nothing is left in workDir, every instance record is deleted. */
async function nothingLeft(endpoint: string) {
  const instances = await store.listInstances({ endpoint });
  expect(instances.length).toBeGreaterThan(0);
  for (const i of instances) {
    expect(i.state, `instance ${i.id}`).toBe('deleted');
    expect(processesWith(`vmpilot-instance-${i.key}`)).toEqual([]);
    expect(processesWith(path.join(workDir, i.key))).toEqual([]);
  }
  expect(readdirSync(workDir).filter((d) => d.includes(`-${endpoint}-`))).toEqual([]);
}

describe('endpoint test through the CLI', () => {
  it('passes every stage on a process endpoint: a real agent registers with its instance credential, runs the probe, halts, and is deleted', async () => {
    const r = await cli('laptop');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const stages = ['config', 'credentials', 'create', 'booting', 'registered', 'probe', 'halted', 'deleted'];
    expect(lines.map((l) => /^([✓✗]) (\w+)/.exec(l)?.slice(1, 3).join(' '))).toEqual([...stages.map((s) => `✓ ${s}`), undefined]);
    expect(lines.at(-1)).toMatch(/^endpoint laptop: every stage passed in \d+\.\d s$/);
    expect(r.stdout).toMatch(/✓ probe +\d+\.\d s {2}payload \d+ ran on pilot \d+: exit 0, marker in its output/);
    await nothingLeft('laptop');
    // the probe ran in the probe group, on the instance's own pilot, which served only that group
    const [inst] = await store.listInstances({ endpoint: 'laptop' });
    expect(inst!.groups).toEqual([expect.stringMatching(/^vmpilot-probe-[0-9a-f]{16}$/)]);
    const pilot = await store.getPilot(inst!.pilotId!);
    expect(pilot).toMatchObject({ state: 'halted', instanceId: inst!.id, groups: inst!.groups });
    const probes = await store.listPayloads({ group: inst!.groups![0]! });
    expect(probes).toMatchObject([{ state: 'done', exitCode: 0, pilotId: inst!.pilotId }]);
  }, 180_000);

  it('--json on an endpoint whose agent file does not exist: a named stage fails with the reason, exit 5, and the instance is deleted', async () => {
    const r = await cli('broken', '--json');
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/^vmpilot-server: error: endpoint broken failed at stage (booting|registered): /);
    const report = JSON.parse(r.stdout) as { ok: boolean; stages: { stage: string; ok: boolean; detail: string; hints?: string[] }[] };
    expect(report.ok).toBe(false);
    const failed = report.stages.find((s) => !s.ok)!;
    // the agent's node exits at once: the machine ended before its pilot registered, seen while starting or booting
    expect(['booting', 'registered']).toContain(failed.stage);
    expect(failed.detail).toMatch(/ended before its pilot registered \(agent exited 1\)/);
    expect(failed.hints!.join('\n')).toContain('agent.log');
    expect(report.stages.at(-1)).toMatchObject({ stage: 'deleted', ok: true, detail: expect.stringMatching(/^cleanup: instance \d+ deleted/) });
    await nothingLeft('broken');
  }, 180_000);

  it('an endpoint that is not configured: exit 3 with the server\'s VMP_NOT_FOUND', async () => {
    const r = await cli('nowhere');
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('no endpoint "nowhere"; configured: laptop, broken, slow');
  }, 60_000);

  it('a stage silent for longer than the server\'s idle socket timeout: the answer is not cut, the stage fails with its reason', async () => {
    // matchWaitMaxSec 5 and socketSlackSec 3: the server's sockets idle out after 8 s; the slow agent ends after 12 s
    const r = await cli('slow');
    expect(r.stderr).toMatch(/^vmpilot-server: error: endpoint slow failed at stage registered: its machine ended before its pilot registered \(agent exited 1\)/);
    expect(r.code).toBe(5);
    // the stage lasted past the 8 s idle socket timeout, and its answer still came
    const stage = /✗ registered +(\d+\.\d) s/.exec(r.stdout);
    expect(Number(stage?.[1])).toBeGreaterThan(8);
    await nothingLeft('slow');
  }, 180_000);
});
