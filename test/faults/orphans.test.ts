import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { FIXTURES, admin, killAll, startAgent, startServer, tempDir, waitFor } from '../integration/harness.js';
import { audit, historiesOf, logged } from './audit.js';

/** True while `pid` is a live process (a zombie is dead: only its parent's wait is missing). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('fault: payloads that leave orphaned children behind', () => {
  const tmp = tempDir('vmpilot-fault-orphans-');
  const escaped: number[] = [];
  afterEach(() => {
    killAll();
    for (const pid of escaped) if (alive(pid)) process.kill(pid, 'SIGKILL'); // a failed test leaves none behind
  });
  afterAll(() => tmp.cleanup());

  it('none of them survives the end of its payload, and the other payloads are untouched', async () => {
    const server = await startServer(path.join(tmp.dir, 'server.db'), ['--heartbeat-interval', '1']);
    const api = admin(server.url);
    const log = path.join(tmp.dir, 'runs.log');
    const stateDir = path.join(tmp.dir, 'agent');
    const doubleFork = path.join(FIXTURES, 'agent/double-fork.sh');
    // a double fork into its own session that ignores SIGTERM, leader exits at once (done) or with 1 (failed);
    // a plain background child whose parent exits; and a neighbour that must not be touched
    const ids = [
      await api.submit({ command: [doubleFork, 'exit'] }),
      await api.submit({ command: ['sh', '-c', `${doubleFork} exit; exit 1`] }),
      await api.submit({ command: ['sh', '-c', 'nohup sh -c "echo \\$\\$ > escaped.pid; exec sleep 600" >/dev/null 2>&1 & while [ ! -s escaped.pid ]; do sleep 0.05; done'] }),
    ];
    const neighbour = await api.submit({ command: logged(log, 6) });
    const agent = startAgent(server.url, { cores: 4, idleTimeoutSec: 3, stateDir });
    const orphans = ids.map((id) => path.join(stateDir, 'payloads', String(id), 'escaped.pid'));

    for (const [i, id] of ids.entries()) {
      const job = await waitFor(`payload ${id} to end`, async () => {
        const j = await api.job(id);
        return ['done', 'failed'].includes(j.state) ? j : undefined;
      });
      expect(job.state).toBe(i === 1 ? 'failed' : 'done');
      expect(existsSync(orphans[i]!), `payload ${id} wrote the pid of its orphan`).toBe(true);
      const pid = Number(readFileSync(orphans[i]!, 'utf8'));
      escaped.push(pid);
      // the end is reported when the tree is gone; allow a moment for the report to race the last kill
      await waitFor(`orphan ${pid} of payload ${id} to be gone`, () => !alive(pid), 5000);
    }
    expect((await api.job(neighbour)).state).toBe('running');

    expect((await agent.exited).code, agent.stderr().slice(-3000)).toBe(0);
    const result = audit([...ids, neighbour], await api.jobs(), log, await historiesOf(api));
    expect(result.violations).toEqual([]);
    expect(result.byState).toEqual({ done: 3, failed: 1 });
    for (const pid of escaped) expect(alive(pid)).toBe(false);
    await server.stop();
  });
});
