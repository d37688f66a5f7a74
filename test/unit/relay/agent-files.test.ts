import { createHash } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Authenticator, sha256Hex } from '../../../src/server/api/auth.js';
import { installErrorHandlers } from '../../../src/server/api/errors.js';
import { registerAgentRoutes } from '../../../src/server/delivery/agent-routes.js';
import { openSqliteStore, type SqliteStore } from '../../../src/server/store/sqlite.js';
import { AgentFiles } from '../../../src/relay/agent-files.js';
import { Artifacts } from '../../../src/relay/artifacts.js';
import { ContentCache } from '../../../src/relay/cache.js';
import { httpRelay } from '../../../src/relay/http-relay.js';
import { silentLogger } from '../../../src/shared/log.js';
import { tempDir } from '../server/helpers.js';
import { PILOT, forwarderTo } from './server.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const NAME = 'vmpilot-linux-x64.gz';

/**
 * The agent files of a batch script's download, through the relay: the
 * server's real agent routes (on 127.0.0.1, counting what is asked of them)
 * serve a directory the test writes, the relay caches them.
 */
describe('agent files through the relay', () => {
  let tmp: ReturnType<typeof tempDir>;
  let store: SqliteStore;
  let app: FastifyInstance;
  let relay: Server;
  let relayUrl: string;
  let closeUpstream: () => void;
  let asked: string[];
  const files = path.join('files');

  /** Put `bytes` on the server as the agent of `version`. */
  const publish = (bytes: Buffer, version: string, listed = bytes) => {
    writeFileSync(path.join(tmp.dir, files, NAME), bytes);
    writeFileSync(
      path.join(tmp.dir, files, 'agent-manifest.json'),
      JSON.stringify({ version, files: [{ name: NAME, kind: 'executable', encoding: 'gzip', size: listed.length, sha256: sha(listed) }] }),
    );
  };
  const get = (name: string, headers: Record<string, string> = {}, token = PILOT) => fetch(`${relayUrl}/v1/agent/${name}`, { headers: { authorization: `Bearer ${token}`, ...headers } });

  beforeEach(async () => {
    tmp = tempDir();
    const { mkdirSync } = await import('node:fs');
    mkdirSync(path.join(tmp.dir, files));
    store = openSqliteStore(path.join(tmp.dir, 'server.db'));
    app = Fastify();
    installErrorHandlers(app);
    asked = [];
    app.addHook('onRequest', async (req) => void asked.push(req.url));
    registerAgentRoutes(app, { auth: new Authenticator({ adminHash: sha256Hex('admin-of-agent-files'), pilotHash: sha256Hex(PILOT) }, store) }, path.join(tmp.dir, files));
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { forwarder, upstream } = forwarderTo(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`);
    closeUpstream = () => upstream.close();
    const cache = new ContentCache(path.join(tmp.dir, 'cache'), silentLogger());
    relay = httpRelay({ forwarder, agentFiles: new AgentFiles(upstream, cache, silentLogger()), artifacts: new Artifacts(cache, [], undefined, silentLogger()), outputs: null, log: silentLogger() });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    relayUrl = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    relay.closeAllConnections();
    await new Promise((r) => relay.close(r));
    closeUpstream();
    await app.close();
    await store.close();
    tmp.remove();
  });

  it('many nodes at once cost the wide-area link one download: fetched once, checked, served from the cache', async () => {
    const agent = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < agent.length; i += 4096) agent.writeUInt32BE(i, i);
    publish(agent, '1.0.0');
    // 40 nodes start at once
    const all = await Promise.all(Array.from({ length: 40 }, () => get(NAME)));
    for (const r of all) {
      expect(r.status).toBe(200);
      expect(r.headers.get('x-vmpilot-sha256')).toBe(sha(agent));
      expect(sha(Buffer.from(await r.arrayBuffer()))).toBe(sha(agent));
    }
    // and more later
    for (let i = 0; i < 3; i++) expect(sha(Buffer.from(await (await get(NAME)).arrayBuffer()))).toBe(sha(agent));
    expect(asked.filter((u) => u === `/v1/agent/${NAME}`)).toHaveLength(1);
    // a cut download resumes from the cache (curl -C -)
    const rest = await get(NAME, { range: 'bytes=1000000-' });
    expect(rest.status).toBe(206);
    expect(Buffer.from(await rest.arrayBuffer()).equals(agent.subarray(1_000_000))).toBe(true);
    // the checksum file of a batch script's check comes from the manifest
    expect(await (await get(`${NAME}.sha256`)).text()).toBe(`${sha(agent)}  ${NAME}\n`);
    expect(asked.filter((u) => u === `/v1/agent/${NAME}`)).toHaveLength(1);
  });

  it('the server still decides who may download: a wrong token gets its 401, and nothing is fetched', async () => {
    publish(Buffer.from('the agent'), '1.0.0');
    const r = await get(NAME, {}, 'not-the-registration-token');
    expect(r.status).toBe(401);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('VMP_UNAUTHORIZED');
    expect(asked.filter((u) => u === `/v1/agent/${NAME}`)).toEqual([]);
    // a name that is not one: said so, not an internal error
    const bad = await get('%E0%A4%A');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/agent file name "%E0%A4%A" is not a valid URL path/);
  });

  it('a file that is not the one the manifest names is not kept, not served; a new agent on the server is fetched again', async () => {
    const real = Buffer.from('the real agent, version 1\n'.repeat(1000));
    const other = Buffer.from('a different file, same size'.padEnd(real.length, '!'));
    // the manifest says one thing, the file on the server (or what the link delivered) is another
    publish(other, '1.0.0', real);
    const r = await get(NAME);
    expect(r.status).toBe(502);
    expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/sha256 [0-9a-f]{64}; expected \d+ bytes with sha256 [0-9a-f]{64}: not kept, not served/);
    expect(readdirSync(path.join(tmp.dir, 'cache')).filter((n) => !n.startsWith('.'))).toEqual([]);
    // the server gets version 2: its manifest names new bytes, which the relay fetches on first ask
    const v2 = Buffer.from('the real agent, version 2\n'.repeat(1000));
    publish(v2, '2.0.0');
    const again = await get(NAME);
    expect(again.status).toBe(200);
    expect(again.headers.get('x-vmpilot-version')).toBe('2.0.0');
    expect(sha(Buffer.from(await again.arrayBuffer()))).toBe(sha(v2));
    expect(readdirSync(path.join(tmp.dir, 'cache'))).toEqual([sha(v2)]);
  });
});
