/**
 * Attack (issue 11, point 7): registration exhausting the server. Today
 * 20,000 registrations with 64 KB labels each make a 1.3 GB database, and
 * each GET /v1/pilots then reads every row whole and blocks the server for
 * seconds. Now labels are bounded, registrations are rate-limited per token
 * and per address (429), and the listings come in pages, newest first,
 * without the large columns. (The time a listing takes with 100,000 pilots
 * is measured in bench/server-limits.mjs, not here.)
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { HeartbeatRequest, PilotView } from '../../src/protocol/index.js';
import { ADMIN_TOKEN, PILOT_TOKEN, admin, killAll, runCommand, SERVER, startAgent, startServer, tempDir } from '../integration/harness.js';
import { heartbeat } from '../unit/server/helpers.js';

const register = (url: string, body: object) =>
  fetch(`${url}/v1/register`, { method: 'POST', headers: { authorization: `Bearer ${PILOT_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
const node = (i: number, extra: object = {}) => ({ hostname: `vm-${i}`, version: '0.1.0', cores: 4, memoryMb: 1000, ...extra });

describe('security: registration cannot exhaust the server', () => {
  const tmp = tempDir('vmpilot-sec-reg-');
  afterEach(() => killAll());
  afterAll(() => tmp.cleanup());

  it('refuses labels too large in all, and registrations beyond the rate with a clear 429; an honest agent still gets in', async () => {
    const config = path.join(tmp.dir, 'limits.yaml');
    writeFileSync(config, 'limits: { registerBurstPerAddress: 5, registerPerSecPerAddress: 2 }\n');
    const server = await startServer(path.join(tmp.dir, 'a.db'), ['--config', config]);
    const api = admin(server.url);

    // 64 labels of 1000 characters each fit the per-label bounds; together they are far over the total
    const labels = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, 'v'.repeat(1000)]));
    const fat = await register(server.url, node(0, { labels }));
    expect(fat.status).toBe(400);
    expect(((await fat.json()) as { error: { message: string } }).error.message).toMatch(/body\.labels is \d+ bytes of JSON; at most 4096/);
    expect(await api.pilots()).toEqual([]);

    // the fat one counted: four more get in, then the address is held back
    const statuses: number[] = [];
    let refused: Response | null = null;
    for (let i = 1; i <= 8; i++) {
      const r = await register(server.url, node(i, { labels: { site: 'X' } }));
      statuses.push(r.status);
      if (r.status === 429 && !refused) refused = r;
      else await r.body?.cancel();
    }
    expect(statuses.slice(0, 4)).toEqual([201, 201, 201, 201]);
    expect(statuses.slice(4)).toContain(429);
    expect(refused?.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(refused?.headers.get('connection')).toBe('close');
    const body = (await refused!.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('VMP_RATE_LIMITED');
    expect(body.error.message).toMatch(/too many registrations from address 127\.0\.0\.1; retry in \d+ s/);
    const before = (await api.pilots()).length;
    expect(before).toBe(4 + statuses.slice(4).filter((s) => s === 201).length);

    // a real agent booting now is held back a moment, retries, and registers
    const agent = startAgent(server.url, { cores: 1, idleTimeoutSec: 1, stateDir: path.join(tmp.dir, 'agent') });
    expect((await agent.exited).code, agent.stderr().slice(-2000)).toBe(0);
    expect((await api.pilots()).length).toBe(before + 1);
    expect(server.stderr()).toMatch(/"msg":"registration rate limited"/);
    await server.stop();
  });

  it('pages GET /v1/pilots newest first, never whole; the admin CLI and its filters read every page', async () => {
    const server = await startServer(path.join(tmp.dir, 'b.db'));
    const api = admin(server.url);
    // an external id longer than the protocol's 255 characters (an agent checks it too, before it starts)
    const longId = await register(server.url, node(0, { externalId: 'j'.repeat(256) }));
    expect(longId.status).toBe(400);
    const refusal = ((await longId.json()) as { error: { code: string; message: string } }).error;
    expect(refusal.code).toBe('VMP_BAD_REQUEST');
    expect(refusal.message).toMatch(/externalId/);
    expect(refusal.message).toMatch(/255/);
    expect(await api.pilots()).toEqual([]);
    for (let i = 1; i <= 250; i++) expect((await register(server.url, node(i, { labels: { site: 'S'.repeat(1000) } }))).status).toBe(201);

    const first = await fetch(`${server.url}/v1/pilots`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const page = (await first.json()) as PilotView[];
    expect(page).toHaveLength(100);
    expect(page[0]!.hostname).toBe('vm-250');
    expect(page.every((p, i) => i === 0 || p.id < page[i - 1]!.id)).toBe(true);
    // the last heartbeat is never part of a listing; the labels are (bounded at registration), as `pilots` shows them
    expect(Object.keys(page[0]!)).not.toContain('lastHeartbeat');
    expect(page[0]!.labels).toEqual({ site: 'S'.repeat(1000) });
    const link = first.headers.get('link');
    expect(link).toMatch(/^<\/v1\/pilots\?limit=100&cursor=\d+>; rel="next"$/);
    const tooMany = await fetch(`${server.url}/v1/pilots?limit=5000`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(tooMany.status).toBe(400);
    expect(((await tooMany.json()) as { error: { message: string } }).error.message).toMatch(/query\.limit must be from 1 to 500/);
    expect((await api.pilots()).map((p) => p.hostname)).toEqual(Array.from({ length: 250 }, (_, i) => `vm-${i + 1}`));

    const env = { VMPILOT_SERVER: server.url, VMPILOT_TOKEN: ADMIN_TOKEN };
    const listed = await runCommand([SERVER, 'pilots', '--json'], env);
    expect(listed.code, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as PilotView[]).map((p) => p.hostname)).toEqual(Array.from({ length: 250 }, (_, i) => `vm-${i + 1}`));
    const newest = await runCommand([SERVER, 'pilots', '--limit', '3'], env);
    expect(newest.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/)[1])).toEqual(['vm-248', 'vm-249', 'vm-250']);
    const drained = await runCommand([SERVER, 'drain', '--host', 'vm-2??'], env);
    expect(drained.code, drained.stderr).toBe(0);
    expect(drained.stdout.trim().split('\n')).toHaveLength(51);
    await server.stop();
  });

  it("refuses capabilities too large in all, at register and in a heartbeat, naming the field; nothing of them is stored", async () => {
    const server = await startServer(path.join(tmp.dir, 'c.db'));
    const api = admin(server.url);
    // every field within the schema's bounds, together far over the total: 64 GPUs with long model names, 64 long tags
    const gpus = Array.from({ length: 64 }, (_, i) => ({ id: `GPU-${i}-${'u'.repeat(150)}`, model: 'M'.repeat(200), memoryMb: 80000 }));
    const tags = Array.from({ length: 64 }, (_, i) => `tag${i}-${'t'.repeat(90)}`);
    const fat = await register(server.url, node(1, { capabilities: { gpus, tags } }));
    expect(fat.status).toBe(400);
    expect(((await fat.json()) as { error: { code: string; message: string } }).error).toEqual({
      code: 'VMP_BAD_REQUEST',
      message: expect.stringMatching(/^body\.capabilities is \d+ bytes of JSON; at most 16384 in all: declare fewer/),
    });
    expect(await api.pilots()).toEqual([]);

    // a real 8-GPU node fits, and its heartbeat cannot grow its capabilities past the bound either
    const eight = { arch: 'x86_64', site: 'SITE-A', tags: ['cvmfs'], gpus: gpus.slice(0, 8).map((g, i) => ({ id: `GPU-${i}`, model: 'NVIDIA A100-SXM4-80GB', memoryMb: 81920 })) };
    const ok = await register(server.url, node(2, { capabilities: eight }));
    expect(ok.status).toBe(201);
    const { pilotId, credential } = (await ok.json()) as { pilotId: number; credential: string };
    const beat = (capabilities: object) =>
      fetch(`${server.url}/v1/pilots/${pilotId}/heartbeat`, {
        method: 'POST',
        headers: { authorization: `Bearer ${credential}`, 'content-type': 'application/json' },
        body: JSON.stringify(heartbeat({ capabilities } as Partial<HeartbeatRequest>)),
      });
    const big = await beat({ gpus, tags });
    expect(big.status).toBe(400);
    expect(((await big.json()) as { error: { message: string } }).error.message).toMatch(/^body\.capabilities is \d+ bytes of JSON; at most 16384/);
    const stored = (await api.pilots()).find((p) => p.id === pilotId);
    expect(stored?.capabilities?.gpus).toHaveLength(8);
    expect(stored?.lastHeartbeatAt).toBeNull();
    await server.stop();
  });
});
