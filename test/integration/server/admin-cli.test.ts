import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, SERVER, admin, killAll, runCommand, startAgent, startServer, tempDir, waitFor, type Server } from '../harness.js';

describe('admin commands against a real server', () => {
  const tmp = tempDir();
  let server: Server;
  // the token in a file, as an operator keeps it: never on the command line, where ps shows it
  const tokenFile = path.join(tmp.dir, 'admin.token');
  const cli = (...args: string[]) => runCommand([SERVER, ...args, '--server', server.url, '--token-file', tokenFile]);

  beforeAll(async () => {
    writeFileSync(tokenFile, `${ADMIN_TOKEN}\n`, { mode: 0o600 });
    server = await startServer(path.join(tmp.dir, 'server.db'));
  });

  it('reads the admin token from --token-file (or VMPILOT_TOKEN_FILE), and says what is wrong with one it cannot use', async () => {
    expect((await cli('jobs', '--json')).stdout).toBe('[]\n');
    const viaEnv = await runCommand([SERVER, 'jobs', '--json', '--server', server.url], { VMPILOT_TOKEN_FILE: tokenFile, VMPILOT_TOKEN: '' });
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
    const missing = await runCommand([SERVER, 'jobs', '--server', server.url, '--token-file', path.join(tmp.dir, 'none')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read --token-file .*none: /);
    const empty = path.join(tmp.dir, 'empty.token');
    writeFileSync(empty, '\n');
    expect((await runCommand([SERVER, 'jobs', '--server', server.url, '--token-file', empty])).stderr).toMatch(/--token-file .*empty\.token is empty: put the admin token on its first line/);
    const wrong = path.join(tmp.dir, 'wrong.token');
    writeFileSync(wrong, 'not-the-token\n');
    const refused = await runCommand([SERVER, 'jobs', '--server', server.url, '--token-file', wrong]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/unauthori[sz]ed|token/i);
  });
  afterAll(() => {
    killAll();
    tmp.cleanup();
  });

  it('submits a YAML file all or none, kills, halts every matching pilot and prints the accounting', async () => {
    const bad = path.join(tmp.dir, 'bad.yaml');
    writeFileSync(bad, 'payloads:\n  - { command: [a] }\n  - { command: [b], cores: 0 }\n');
    const refused = await cli('submit', '--file', bad);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/payloads\[1\]: cores "0"/);
    expect(await admin(server.url).jobs()).toEqual([]);

    const good = path.join(tmp.dir, 'jobs.yaml');
    writeFileSync(good, 'defaults: { group: atlas }\npayloads:\n  - { command: "echo quick", count: 2 }\n  - { command: [/bin/sleep, "60"], group: cms }\n');
    const ok = await cli('submit', '--file', good, '--json');
    expect(ok.code, ok.stderr).toBe(0);
    const ids = JSON.parse(ok.stdout) as number[];
    expect(ids).toHaveLength(3);

    startAgent(server.url, { cores: 4, idleTimeoutSec: 120, stateDir: path.join(tmp.dir, 'agent') });
    const api = admin(server.url);
    await waitFor('the sleeper to run', async () => (await api.job(ids[2]!)).state === 'running');
    const kill = await cli('kill', String(ids[2]));
    expect(kill.stdout).toMatch(/kill-payload instruction \d+ sent to its pilot; it ends cancelled once stopped/);
    // one that no pilot here can take (8 cores) is cancelled in the queue at once
    const big = await api.submit({ command: ['/bin/true'], cores: { min: 8, max: 8, wholeNode: false } });
    expect((await cli('kill', String(big))).stdout).toBe(`payload ${big}: cancelled before it ran\n`);
    expect(await api.job(big)).toMatchObject({ state: 'cancelled', attempts: 0 });
    // killed by an administrator: cancelled, not failed (it did nothing wrong)
    await waitFor('the sleeper to be killed', async () => (await api.job(ids[2]!)).state === 'cancelled');
    const shown = await cli('job', String(ids[2]));
    expect(shown.stdout).toMatch(/^state\s+cancelled$/m);
    expect(shown.stdout).toMatch(/--- history ---\nAT\s+STATE\s+PILOT\s+REASON\n.*queued\s+-\s+submitted\n.*assigned\s+1\s+assigned to pilot 1\n.*running\s+1\s+started\n.*cancelled\s+1\s+killed/);
    await waitFor('the quick ones to be done', async () => (await api.jobs()).filter((j) => j.state === 'done').length === 2);

    const halt = await cli('halt', '--all', '--reason', 'end of test');
    expect(halt.stdout).toMatch(/^1 \d+$/m);
    await waitFor('the pilot to halt', async () => (await api.pilots())[0]?.state === 'halted');

    const acct = await cli('accounting', '--json');
    const rows = JSON.parse(acct.stdout) as { group: string; done: number; failed: number; cancelled: number; cancelledCoreSec: number }[];
    expect(rows.find((r) => r.group === 'atlas')).toMatchObject({ done: 2, failed: 0, cancelled: 0 });
    expect(rows.find((r) => r.group === 'cms')).toMatchObject({ done: 0, failed: 0, cancelled: 1 });
    expect(rows.find((r) => r.group === 'cms')?.cancelledCoreSec).toBeGreaterThan(0);
    expect((await cli('accounting')).stdout).toMatch(/By group\nGROUP\s+CORE-SEC\s+DONE-SEC\s+FAILED-SEC\s+CANCELLED-SEC\s+EVICTED-SEC/);
    const listed = await cli('jobs');
    expect(listed.stdout).toMatch(new RegExp(`^${ids[2]}\\s+sleep\\s+cms\\s+cancelled\\s`, 'm'));
    expect(listed.stdout).toMatch(/\ncore-seconds: done \d+\.\d, failed 0\.0, cancelled (?!0\.0,)\d+\.\d, evicted 0\.0 \(0 attempts\)\n$/);
    const help = await runCommand([SERVER, 'accounting', '--help']);
    expect(help.stdout).toMatch(/Example:/);
  });

  it('job N shows the CPU time, the CPU efficiency and the memory peak of the run that ended a payload, as its agent measured them', async () => {
    const api = admin(server.url);
    // 3 s of busy CPU on one core while holding 60 MB
    const burn = 'import time\nb = bytearray(60 * 1024 * 1024)\nt = time.time()\nwhile time.time() - t < 3: pass\n';
    const id = await api.submit({ command: ['python3', '-c', burn], group: 'burn', cores: { min: 1, max: 1, wholeNode: false } });
    startAgent(server.url, { cores: 1, idleTimeoutSec: 120, stateDir: path.join(tmp.dir, 'burner') });
    await waitFor('the burner to end', async () => (await api.job(id)).state === 'done');
    const p = await api.job(id);
    expect(p.cpuSec).toBeGreaterThan(0.2);
    expect(p.peakRssMb).toBeGreaterThan(60);
    // how much of a core it got depends on the machine's load: only that it was measured
    expect(p.cpuEfficiency).toBeGreaterThan(0);
    const shown = await cli('job', String(id));
    expect(shown.stdout).toMatch(new RegExp(`^cpu\\s+${p.cpuSec!.toFixed(1)} s, ${Math.round(p.cpuEfficiency! * 100)} % of 1 core over its wall time$`, 'm'));
    expect(shown.stdout).toMatch(new RegExp(`^memory peak\\s+${Math.round(p.peakRssMb!)} MB$`, 'm'));
    // run it again: a new payload with the same request, on the same agent
    const again = await cli('resubmit', String(id));
    expect(again.code, again.stderr).toBe(0);
    const copy = Number(/^payload \d+ resubmitted as payload (\d+)$/m.exec(again.stdout)?.[1]);
    expect(copy).toBeGreaterThan(id);
    // the copy has not ended (it burns 3 s): refused, exit 3, and says what to do
    const early = await cli('resubmit', String(copy));
    expect(early.code).toBe(3);
    expect(early.stderr).toMatch(new RegExp(`payload ${copy} is (queued|assigned|running): only a payload that ended \\(done, failed or cancelled\\) can be resubmitted; wait for its end, or kill it first`));
    await waitFor('the copy to end', async () => (await api.job(copy)).state === 'done');
    expect(await api.job(copy)).toMatchObject({ command: p.command, group: 'burn', cores: p.cores });
    expect(await api.job(id)).toMatchObject({ state: 'done', endedAt: p.endedAt });
    await cli('halt', '--all', '--reason', 'end of test');
    await waitFor('the burner pilot to halt', async () => (await api.pilots()).every((x) => x.state === 'halted'));
  });
});
