/**
 * Attack: a bootstrap artifact (software the agent installs before it
 * serves) that plants a setuid binary, reaches out of its directory through
 * a chain of its own links, or breaks half-way to leave a partial tree. The
 * real agent installs each from a file: URL: a setuid bit never survives, a
 * link that leaves the destination once followed is refused (the pilot halts
 * 500 naming the entry), and a refused or broken archive leaves nothing in
 * the cache.
 */
import { createHash } from 'node:crypto';
import { chmodSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { admin, killAll, startAgent, startServer, tempDir } from '../integration/harness.js';
import { audit } from '../faults/audit.js';
import { rawTar } from './tar.js';

describe('attack: a hostile bootstrap archive', () => {
  const tmp = tempDir('vmpilot-sec-unpack-');
  afterEach(() => killAll());
  afterAll(() => tmp.cleanup());

  /** Install `archive` as artifact `name` (unpacked into its own cache), start an agent on it; its exit and the cache's entries. */
  const install = async (name: string, archive: Buffer, payloads: string[][] = []) => {
    chmodSync(tmp.dir, 0o755); // the payload accounts reach the installed software
    const server = await startServer(path.join(tmp.dir, `server-${name}.db`));
    const api = admin(server.url);
    const file = path.join(tmp.dir, `${name}.tar`);
    writeFileSync(file, archive);
    const sha = createHash('sha256').update(archive).digest('hex');
    const cache = path.join(tmp.dir, `cache-${name}`);
    const spec = path.join(tmp.dir, `${name}.yaml`);
    writeFileSync(spec, `software:\n  - { url: "file://${file}", sha256: "${sha}", dest: tool, unpack: true }\ncacheDir: ${cache}\n`);
    const ids = [];
    for (const command of payloads) ids.push(await api.submit({ command, group: name }));
    // the agent's default isolation: as root, payloads run as accounts of their own
    const agent = startAgent(server.url, { stateDir: path.join(tmp.dir, `agent-${name}`), cores: 1, idleTimeoutSec: 2, isolation: 'auto', extra: ['--bootstrap', spec] });
    const exit = await Promise.race([agent.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`agent did not exit:\n${agent.stderr().slice(-3000)}`)), 40_000))]);
    const pilots = await api.pilots();
    const jobs = await Promise.all(ids.map((id) => api.job(id)));
    const all = await api.jobs();
    await server.stop();
    return { exit, stderr: agent.stderr(), pilot: pilots.find((p) => p.id === Math.max(...pilots.map((q) => q.id)))!, cache: readdirSync(cache).sort(), sha, ids, jobs, all };
  };

  it('a setuid file is installed without its setuid and setgid bits', async () => {
    const archive = rawTar([
      { name: 'bin/', type: '5', mode: 0o755 },
      { name: 'bin/su', type: '0', body: '#!/bin/sh\necho I am $(id -un)\n', mode: 0o6755 },
    ]);
    const r = await install('setuid', archive, [['sh', '-c', 'stat -c %a "$VMPILOT_SOFTWARE_DIR/tool/bin/su"; "$VMPILOT_SOFTWARE_DIR/tool/bin/su"']]);
    expect(r.exit.code, r.stderr.slice(-2000)).toBe(0);
    const job = r.jobs[0]!;
    expect(job, JSON.stringify(job)).toMatchObject({ state: 'done', exitCode: 0 });
    expect(job.outputTail).toMatch(/^755\nI am vmpilot-slot\d+$/);
    expect(audit(r.ids, r.all, path.join(tmp.dir, 'no-run-log')).violations).toEqual([]);
  });

  it('a link that leaves the destination through another of its links is refused; nothing is unpacked', async () => {
    const archive = rawTar([
      { name: 'here', type: '2', link: '.' },
      { name: 'up', type: '2', link: 'here/../escaped' },
    ]);
    const r = await install('chain', archive);
    expect(r.exit.code).toBe(15);
    expect(r.pilot).toMatchObject({ state: 'halted', shutdownCode: 500 });
    expect(r.pilot.shutdownMessage).toMatch(/bootstrap step install-software failed: .*refusing to unpack .*link "up" -> "here\/..\/escaped" points out of the destination once its links are followed/);
    // the verified download stays (a retry needs no new download); no tree, whole or partial
    expect(r.cache).toEqual([`${r.sha}.file`]);
  });

  it('an archive that breaks half-way leaves no partial tree', async () => {
    const archive = rawTar([
      { name: 'a', type: '0', body: 'first' },
      { name: 'b', type: '0', body: 'second' },
      { name: 'c', type: '1', link: 'missing' },
    ]);
    const r = await install('broken', archive);
    expect(r.exit.code).toBe(15);
    expect(r.pilot.shutdownMessage).toMatch(/bootstrap step install-software failed: .*cannot unpack .*ENOENT/);
    expect(r.cache).toEqual([`${r.sha}.file`]);
  });
});
