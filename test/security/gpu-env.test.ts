/**
 * GPUs of isolated payloads: a payload that runs as a slot account (agent as
 * root) or in an unshare or bwrap sandbox (agent not root) still gets the
 * GPUs the agent gave it (CUDA_VISIBLE_DEVICES, NVIDIA_VISIBLE_DEVICES,
 * $JOBFEATURES/allocated_gpu_ids), a payload without GPUs gets none, and the
 * node's device files are there to open: the sandbox keeps the node's /dev,
 * so a GPU's /dev/nvidia* would be too. This machine has no GPU: the GPUs
 * are declared (`--gpus 2`), and the device check is on the character
 * devices the node has (every one the test sees outside, and /dev/urandom
 * read); opening a real /dev/nvidia0 is untested here.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { admin, killAll, startServer, tempDir, waitFor } from '../integration/harness.js';
import { MODES, places, startModeAgent } from './lib.js';

/** What the payload saw: one line of fields, then the character devices of /dev, then the bytes read from /dev/urandom. */
const RECORD = [
  'echo "cuda=${CUDA_VISIBLE_DEVICES-unset} nvidia=${NVIDIA_VISIBLE_DEVICES-unset} ids=$(cat "$JOBFEATURES/allocated_gpu_ids" 2>/dev/null || echo -) uid=$(id -u)"',
  'echo "devices=$(find /dev -maxdepth 1 -type c | sort | tr "\\n" " ")"',
  'echo "urandom=$(head -c 4 /dev/urandom | wc -c)"',
].join('; ');

/** The character devices directly under /dev, as the test sees them. */
const hostDevices = () => execFileSync('sh', ['-c', 'find /dev -maxdepth 1 -type c | sort'], { encoding: 'utf8' }).trim().split('\n');

function seen(outputTail: string | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of (outputTail ?? '').split('\n')) {
    for (const field of line.startsWith('devices=') ? [line] : line.split(' ')) {
      const at = field.indexOf('=');
      if (at > 0) out[field.slice(0, at)] = field.slice(at + 1).trim();
    }
  }
  return out;
}

describe.each(MODES)('GPUs of isolated payloads ($name)', (mode) => {
  const tmp = tempDir('vmpilot-sec-gpu-');
  beforeAll(() => mode.prepare?.(), 15 * 60_000);
  afterEach(() => killAll());
  afterAll(() => tmp.cleanup());

  it('each GPU payload gets its GPU in its environment and job features, a CPU payload none, and /dev is the node’s', async () => {
    const where = places(tmp.dir, mode);
    const server = await startServer(path.join(tmp.dir, `server-${mode.expected}.db`), ['--heartbeat-interval', '1']);
    const api = admin(server.url);
    const gpu = [
      await api.submit({ command: ['sh', '-c', RECORD], name: 'gpu-a', requirements: { gpus: 1 } }),
      await api.submit({ command: ['sh', '-c', RECORD], name: 'gpu-b', requirements: { gpus: 1 } }),
    ];
    const cpu = await api.submit({ command: ['sh', '-c', RECORD], name: 'cpu' });
    const before = hostDevices();
    const agent = startModeAgent(server.url, mode, where, { cores: 4, idleTimeoutSec: 2, extra: ['--gpus', '2'] });
    for (const id of [...gpu, cpu]) await waitFor(`payload ${id} to be done`, async () => (await api.job(id)).state === 'done', 60_000);
    expect((await agent.exited).code, agent.stderr().slice(-3000)).toBe(0);
    // it ran isolated as this mode says
    expect((await api.pilots())[0]!.isolation).toBe(mode.expected);

    // devices the node had before and still has: each one is there inside too
    const after = new Set(hostDevices());
    const kept = before.filter((d) => after.has(d));
    expect(kept).toContain('/dev/urandom');
    for (const id of [...gpu, cpu]) {
      const s = seen((await api.job(id)).outputTail);
      expect(s.urandom, `payload ${id} read /dev/urandom`).toBe('4');
      const inside = new Set((s.devices ?? '').split(' ').filter(Boolean));
      expect(kept.filter((d) => !inside.has(d)), `devices payload ${id} does not see`).toEqual([]);
      if (mode.expected === 'slot-users') expect(s.uid, 'a slot account, not root').not.toBe('0');
    }

    for (const id of gpu) {
      const s = seen((await api.job(id)).outputTail);
      expect(s.cuda, `payload ${id}: ${JSON.stringify(s)}`).toMatch(/^[01]$/);
      expect(s.nvidia).toBe(s.cuda);
      expect(s.ids).toBe(s.cuda);
    }
    const plain = seen((await api.job(cpu)).outputTail);
    expect(plain, JSON.stringify(plain)).toMatchObject({ cuda: '', nvidia: 'none' });
    await server.stop();
  });
});
