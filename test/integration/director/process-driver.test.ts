/**
 * The `process` driver against the driver contract, for real: the built
 * agent (dist/vmpilot.cjs) as local child processes registering with the
 * built server on 127.0.0.1, running a payload, halting when idle.
 */
import { chmodSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, expect } from 'vitest';
import { resourcePrefix } from '../../../src/server/director/credential.js';
import { endpointsFrom } from '../../../src/server/director/endpoint-config.js';
import { ProcessDriver } from '../../../src/server/director/drivers/process.js';
import type { ProcessSettings } from '../../../src/server/director/driver-settings.js';
import type { DriverResource } from '../../../src/server/director/ports.js';
import { systemClock } from '../../../src/shared/clock.js';
import { driverContract } from '../../unit/server/director/driver-contract.js';
import { AGENT, PILOT_TOKEN, admin, processesWith, startServer, tempDir, waitFor, type Server } from '../harness.js';

const tmp = tempDir('vmpilot-process-driver-');
// the agents run as root and their payloads as slot accounts, which must pass through to their directories
chmodSync(tmp.dir, 0o711);
afterAll(() => tmp.cleanup());

driverContract('process', async () => {
  const server: Server = await startServer(path.join(tmp.dir, 'server.db'));
  const workDir = path.join(tmp.dir, 'instances');
  const settings = endpointsFrom({ laptop: { driver: 'process', process: { workDir }, shapes: { s: { cores: 1, memoryMb: 500 } } } }, 'test')[0]!.driver as ProcessSettings;
  const make = (endpoint: string) =>
    new ProcessDriver({
      settings,
      prefix: resourcePrefix('test', endpoint),
      agent: AGENT,
      node: process.execPath,
      baseEnv: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      clock: systemClock,
      stopGraceMs: 20_000,
    });
  const api = admin(server.url);
  return {
    driver: make('laptop'),
    prefix: resourcePrefix('test', 'laptop'),
    other: { driver: make('other'), prefix: resourcePrefix('test', 'other') },
    request: (key) => ({
      key,
      cores: 1,
      memoryMb: 500,
      lifetimeSec: 600,
      // phase A: the server knows no instance credentials yet, so the machines register with the shared token
      bootstrap: { serverUrl: server.url, credential: PILOT_TOKEN, idleTimeoutSec: 2, graceSec: 2, lifetimeSec: 600 },
    }),
    until: (what, check) => waitFor(what, check, 60_000),
    halt: async () => {
      const id = await api.submit({ command: ['sh', '-c', 'echo ran on a director instance'], group: 'g' });
      await waitFor('the payload to be done', async () => (await api.job(id)).state === 'done', 60_000);
      const job = await api.job(id);
      expect(job.outputTail).toContain('ran on a director instance');
      // its pilot then finds no more work and halts by itself: shutdown code 300
      await waitFor('its pilot to halt', async () => (await api.pilots()).find((p) => p.id === job.pilotId && p.state === 'halted' && p.shutdownCode === 300), 60_000);
    },
    nothingLeft: async (r: DriverResource) => {
      expect(processesWith(`vmpilot-instance-${r.key}`)).toEqual([]);
      expect(processesWith(path.join(workDir, r.key))).toEqual([]);
      expect(readdirSync(workDir)).not.toContain(r.key);
    },
    close: async () => {
      await server.stop();
    },
  };
});
