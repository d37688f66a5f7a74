/**
 * `pilots` and `pilot N` against a real server and a real agent in a
 * (Torque-like) batch job: the table counts the registration as contact,
 * shows the job's id and the labels, and cores the server assigned; `pilot
 * N` shows the last heartbeat's figures, the Machine/Job Features, the
 * history, the instructions with their acknowledgements and the payloads;
 * `--json` on both. A second `drain` sends nothing new and says so.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InstructionView, PilotView } from '../../../src/protocol/index.js';
import { ADMIN_TOKEN, SERVER, admin, killAll, runCommand, startAgent, startServer, tempDir, waitFor, type Server } from '../harness.js';

describe('pilots and pilot N', () => {
  const tmp = tempDir('vmpilot-pilot-view-');
  let server: Server;
  const cli = (...args: string[]) => runCommand([SERVER, ...args, '--server', server.url, '--token', ADMIN_TOKEN]);

  beforeAll(async () => {
    server = await startServer(path.join(tmp.dir, 'server.db'), ['--heartbeat-interval', '1']);
  });
  afterAll(async () => {
    await server.stop();
    killAll();
    tmp.cleanup();
  });

  it('shows the job id, labels, contact, assigned cores, the last heartbeat, history, instructions and payloads', async () => {
    const api = admin(server.url);
    const go = path.join(tmp.dir, 'go');
    const id = await api.submit({ command: ['/bin/sh', '-c', `while [ ! -e ${go} ]; do sleep 0.1; done`], cores: { min: 2, max: 2, wholeNode: false }, group: 'atlas' });
    const mjf = path.join(tmp.dir, 'machinefeatures');
    mkdirSync(mjf);
    writeFileSync(path.join(mjf, 'hs06'), '123\n');
    const agent = startAgent(server.url, {
      cores: 4,
      idleTimeoutSec: 60,
      stateDir: path.join(tmp.dir, 'agent'),
      extra: ['--label', 'site=TEST-SITE', '--machine-features', mjf],
      // a Torque job: the agent says its id; no command is asked for its end time
      env: { PBS_JOBID: '4242.pbs.test.invalid', PBS_WALLTIME: '3600' },
    });
    await waitFor('the payload to run', async () => (await api.job(id)).state === 'running');
    const beat = await waitFor('a heartbeat that counts the payload', async () => {
      const [p] = await api.pilots();
      return p && p.coresReported === 2 ? p : undefined;
    });
    expect(beat).toMatchObject({ externalId: '4242.pbs.test.invalid', labels: { batch: 'pbs', site: 'TEST-SITE' }, coresUsed: 2 });

    const table = await cli('pilots');
    expect(table.code, table.stderr).toBe(0);
    const [head, row] = table.stdout.split('\n');
    expect(head).toMatch(/^ID\s+HOSTNAME\s+STATE\s+CORES\s+EXTERNAL-ID\s+LABELS\s+ISOLATION\s+VIA\s+CONTACT\s+SHUTDOWN$/);
    expect(row).toMatch(/^1\s+\S+\s+running\s+2\/4\s+4242\.pbs\.test\.invalid\s+batch=pbs,site=TEST-SITE\s+none\s+-\s+\d+s ago\s+-$/);
    const listed = JSON.parse((await cli('pilots', '--json')).stdout) as PilotView[];
    expect(listed[0]).toMatchObject({ id: 1, externalId: '4242.pbs.test.invalid', coresUsed: 2 });

    // drain twice: one instruction, the second answered with it and said so
    const first = await cli('drain', '1', '--reason', 'kernel update');
    expect(first.code, first.stderr).toBe(0);
    const drainId = first.stdout.trim();
    expect(drainId).toMatch(/^\d+$/);
    await waitFor('the drain acknowledged', async () => {
      const list = (await api.call<InstructionView[]>('GET', '/v1/pilots/1/instructions')).body;
      return list.length === 1 && list[0]!.ok === true;
    });
    await waitFor('the pilot draining', async () => (await api.pilots())[0]!.state === 'draining');
    const second = await cli('drain', '1');
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toBe(`${drainId}\n`);
    expect(second.stderr).toBe(`pilot 1 already has drain instruction ${drainId}; nothing new sent\n`);
    expect((await api.call<InstructionView[]>('GET', '/v1/pilots/1/instructions')).body).toHaveLength(1);

    const shown = await cli('pilot', '1');
    expect(shown.code, shown.stderr).toBe(0);
    const text = shown.stdout;
    expect(text).toMatch(/^external id\s+4242\.pbs\.test\.invalid$/m);
    expect(text).toMatch(/^labels\s+batch=pbs,site=TEST-SITE$/m);
    expect(text).toMatch(/^cores\s+2 of 4 assigned by the server; 2 in use at the last heartbeat$/m);
    expect(text).toMatch(/^last contact\s+\S+ \(\d+s ago\)$/m);
    expect(text).toMatch(/--- last heartbeat ---\n(.*\n)*load\s+\d+\.\d\d \d+\.\d\d \d+\.\d\d\n/);
    expect(text).toMatch(/^memory\s+\d+ of \d+ MB used$/m);
    expect(text).toMatch(/^disk free\s+\d+ MB$/m);
    expect(text).toMatch(/--- machine\/job features \(last heartbeat\) ---\nKEY\s+VALUE\n(.*\n)*hs06\s+123\n/);
    expect(text).toMatch(/--- history ---\nAT\s+STATE\s+REASON\n.*booting\s+registered\n(.*\n)*.*draining\s/);
    expect(text).toMatch(new RegExp(`--- instructions ---\\nID\\s+INSTRUCTION\\s+SENT\\s+DONE\\s+OK\\s+MESSAGE\\n${drainId}\\s+drain: kernel update\\s+\\S+\\s+\\S+Z\\s+yes\\s+-\\n`));
    expect(text).toMatch(new RegExp(`--- payloads ---\\nID\\s+NAME.*\\n${id}\\s+sh\\s+atlas\\s+running\\s+2/2\\s+1\\s`));
    const json = JSON.parse((await cli('pilot', '1', '--json')).stdout) as {
      pilot: PilotView;
      history: unknown[];
      instructions: InstructionView[];
      payloads: { id: number }[];
    };
    expect(json.pilot.lastHeartbeat?.load).toHaveLength(3);
    expect(json.pilot.lastHeartbeat?.features).toMatchObject({ hs06: 123 });
    expect(json.instructions.map((i) => [i.instruction.type, i.ok])).toEqual([['drain', true]]);
    expect(json.payloads.map((p) => p.id)).toEqual([id]);
    expect(json.history.length).toBeGreaterThanOrEqual(3);

    writeFileSync(go, '');
    const exit = await agent.exited;
    expect(exit.code, agent.stderr()).toBe(0);
    expect((await cli('pilot', '1')).stdout).toMatch(/^shutdown\s+100 Shutdown as requested: drained$/m);
  });

  it('names a pilot that does not exist', async () => {
    const r = await cli('pilot', '999');
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^vmpilot-server: error: the server refused it \(404\): no pilot 999\n/);
  });
});
