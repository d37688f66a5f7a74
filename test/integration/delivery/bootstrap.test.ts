/**
 * The built agent's bootstrap steps (`vmpilot run --bootstrap FILE`): it
 * registers, installs software from a real HTTP server (checked, unpacked,
 * cached), sets the payload environment, runs setup commands, then serves;
 * a failed step halts it with shutdown code 500 naming the step, in the
 * report the server keeps.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, startAgent, startServer, tempDir, waitFor, type Server } from '../harness.js';

describe('vmpilot run --bootstrap', () => {
  const tmp = tempDir('vmpilot-bootstrap-test-');
  let files: HttpServer;
  let filesUrl = '';
  let tarball: Buffer;
  let server: Server;

  beforeAll(async () => {
    mkdirSync(path.join(tmp.dir, 'pkg/bin'), { recursive: true });
    writeFileSync(path.join(tmp.dir, 'pkg/bin/greet'), '#!/bin/sh\necho "hello from $GREETING"\n', { mode: 0o755 });
    execFileSync('tar', ['-czf', path.join(tmp.dir, 'pkg.tgz'), '-C', path.join(tmp.dir, 'pkg'), 'bin']);
    tarball = readFileSync(path.join(tmp.dir, 'pkg.tgz'));
    files = createServer((_req, res) => res.writeHead(200, { 'content-length': tarball.length }).end(tarball));
    await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
    filesUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
    server = await startServer(path.join(tmp.dir, 'server.db'));
  });
  afterAll(async () => {
    await server.stop();
    await new Promise((r) => files.close(r));
    tmp.cleanup();
  });

  const spec = (name: string, sha256: string) => {
    const file = path.join(tmp.dir, `${name}.yaml`);
    writeFileSync(
      file,
      [
        'check: { minDiskMb: 1, minMemoryMb: 1, paths: [/bin/sh] }',
        'software:',
        `  - { url: "${filesUrl}/pkg.tgz", sha256: "${sha256}", dest: greet, unpack: true }`,
        'env: { GREETING: bootstrap-env }',
        'setup: ["test -x greet/bin/greet", "greet/bin/greet > setup.out"]',
        `cacheDir: ${path.join(tmp.dir, 'cache')}`,
      ].join('\n'),
    );
    return file;
  };

  it('installs, sets the environment, runs setup, then serves payloads that use what it installed', async () => {
    const api = admin(server.url);
    const state = path.join(tmp.dir, 'agent-ok');
    const id = await api.submit({ command: ['sh', '-c', '"$VMPILOT_SOFTWARE_DIR/greet/bin/greet"'], group: 'g' });
    const sha = createHash('sha256').update(tarball).digest('hex');
    const agent = startAgent(server.url, { stateDir: state, cores: 1, idleTimeoutSec: 2, extra: ['--bootstrap', spec('good', sha)] });
    const exit = await agent.exited;
    expect(exit.code, agent.stderr()).toBe(0);
    const job = await api.job(id);
    expect(job.state).toBe('done');
    expect(job.outputTail).toContain('hello from bootstrap-env');
    expect(readFileSync(path.join(state, 'software/setup.out'), 'utf8')).toBe('hello from bootstrap-env\n');
    expect(existsSync(path.join(tmp.dir, 'cache', `${sha}.ok`))).toBe(true);
    const pilot = (await api.pilots()).find((p) => p.shutdownCode !== null)!;
    expect(pilot.shutdownCode).toBe(300);
  });

  it('halts with 500 naming the failed step when the artifact checksum is wrong, and runs nothing', async () => {
    const api = admin(server.url);
    const before = (await api.pilots()).length;
    const queued = await api.submit({ command: ['true'], group: 'g' });
    const agent = startAgent(server.url, { stateDir: path.join(tmp.dir, 'agent-bad'), cores: 1, idleTimeoutSec: 30, extra: ['--bootstrap', spec('bad', 'd'.repeat(64))] });
    const exit = await agent.exited;
    expect(exit.code).toBe(15);
    const pilots = await api.pilots();
    expect(pilots).toHaveLength(before + 1);
    const pilot = pilots.find((p) => p.id === Math.max(...pilots.map((q) => q.id)))!;
    expect(pilot.state).toBe('halted');
    expect(pilot.shutdownCode).toBe(500);
    expect(pilot.shutdownMessage).toMatch(/bootstrap step install-software failed: .*has sha256 [0-9a-f]{64}, expected d{64}/);
    await waitFor('the payload still queued', async () => (await api.job(queued)).state === 'queued');
  });

  it('heartbeats while a long bootstrap runs: the server sees a booting pilot, not a stalled one', async () => {
    const fast = await startServer(path.join(tmp.dir, 'fast.db'), ['--heartbeat-interval', '1']);
    try {
      const api = admin(fast.url);
      const go = path.join(tmp.dir, 'go');
      const file = path.join(tmp.dir, 'slow.yaml');
      // a setup step that lasts until the test lets it finish (a large download, say)
      writeFileSync(file, `setup: ["while [ ! -e ${go} ]; do sleep 0.1; done"]\n`);
      const agent = startAgent(fast.url, { stateDir: path.join(tmp.dir, 'agent-slow'), cores: 1, idleTimeoutSec: 1, extra: ['--bootstrap', file] });
      const pilot = await waitFor('a heartbeat from the pilot while it boots', async () => {
        const [p] = await api.pilots();
        return p && p.lastHeartbeatAt !== null ? p : undefined;
      });
      expect(pilot.state).toBe('booting');
      writeFileSync(go, '');
      const exit = await agent.exited;
      expect(exit.code, agent.stderr()).toBe(0);
      expect((await api.pilots())[0]!.shutdownCode).toBe(300);
    } finally {
      await fast.stop();
    }
  });
});
