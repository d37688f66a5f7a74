/**
 * `vmpilot run` that cannot start says why as every other command does: one
 * plain `vmpilot: error: …` line on stderr (beside its JSON log, which keeps
 * an error-level record), and exits with its documented status
 * (docs/errors.md): 2 for a bad flag or config value, 15 for a refused
 * registration (shutdown code 500), 17 when the server stayed unreachable
 * until the orphan timeout (700).
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT, admin, killAll, runCommand, startServer, tempDir, type Server } from './harness.js';

/** The lines of stderr that are not the agent's JSON log. */
const plainLines = (stderr: string) => stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{'));
/** The agent's JSON log records on stderr. */
const records = (stderr: string) =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; msg: string; [k: string]: unknown });

describe('vmpilot run: a fatal start-up problem', () => {
  const tmp = tempDir('vmpilot-start-errors-');
  let server: Server;
  const run = (args: string[], token: string) =>
    runCommand([AGENT, 'run', '--halt', 'exit', '--isolation', 'none', '--idle-timeout', '5', ...args], { VMPILOT_PILOT_TOKEN: token, VMPILOT_TOKEN: '' });

  beforeAll(async () => {
    server = await startServer(path.join(tmp.dir, 'server.db'));
  });
  afterAll(async () => {
    await server.stop();
    killAll();
    tmp.cleanup();
  });

  it('a refused registration: one "vmpilot: error:" line naming the refusal and what to check, exit 15, an error in the log', async () => {
    const r = await run(['--server', server.url, '--state-dir', path.join(tmp.dir, 'refused')], 'not-the-registration-token');
    expect(r.code, r.stderr).toBe(15);
    const plain = plainLines(r.stderr);
    expect(plain).toHaveLength(1);
    expect(plain[0]).toMatch(
      new RegExp(`^vmpilot: error: registration refused by ${server.url}: the token is not valid for registration \\(HTTP 401\\); check the registration token .*\\(shutdown code 500, exit status 15\\)$`),
    );
    const log = records(r.stderr);
    expect(log.find((l) => l.msg === 'registration refused')).toMatchObject({ level: 50, errorCode: 'VMP_UNAUTHORIZED' });
    expect(log.find((l) => l.msg === 'fatal problem: halted')).toMatchObject({ level: 50, code: 500, exitStatus: 15 });
  });

  it('a server unreachable until the orphan timeout: one line saying so and why, exit 17', async () => {
    const r = await run(['--server', 'http://127.0.0.1:1', '--orphan-timeout', '1', '--state-dir', path.join(tmp.dir, 'unreachable')], 'any-token-12345');
    expect(r.code, r.stderr).toBe(17);
    const plain = plainLines(r.stderr);
    expect(plain).toHaveLength(1);
    expect(plain[0]).toMatch(
      /^vmpilot: error: server unreachable for 1 s \(--orphan-timeout\): cannot reach http:\/\/127\.0\.0\.1:1\/v1\/register: connection refused \(shutdown code 700, exit status 17\)$/,
    );
    expect(records(r.stderr).find((l) => l.msg === 'server unreachable: giving up')).toMatchObject({ level: 50 });
  });

  it('a bad flag or config value: one line naming it, exit 2, before anything starts', async () => {
    const r = await run(['--server', server.url, '--cores', 'four', '--state-dir', path.join(tmp.dir, 'bad')], 'any-token-12345');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('vmpilot: error: --cores "four": expected an integer from 1 to 4096\n');
    const conf = await runCommand([AGENT, 'run', '--server', server.url, '--state-dir', path.join(tmp.dir, 'bad2')], { VMPILOT_PILOT_TOKEN: 'x1234567', VMPILOT_CA_FILE: path.join(tmp.dir, 'missing.pem') });
    expect(conf.code).toBe(2);
    expect(plainLines(conf.stderr)).toEqual([expect.stringMatching(/^vmpilot: error: caFile: cannot read .*missing\.pem: ENOENT/)]);
  });

  it('an external id or labels larger than the server takes: one line naming the flag and the limit, exit 2, nothing registered', async () => {
    const before = (await admin(server.url).pilots()).length;
    const long = await run(['--server', server.url, '--external-id', 'i'.repeat(256), '--state-dir', path.join(tmp.dir, 'long-id')], 'any-token-12345');
    expect(long.code).toBe(2);
    expect(long.stderr).toBe(`vmpilot: error: --external-id "${'i'.repeat(256)}": expected up to 255 printable characters\n`);
    const labels = Array.from({ length: 5 }, (_, i) => ['--label', `k${i}=${'v'.repeat(1000)}`]).flat();
    const fat = await run(['--server', server.url, ...labels, '--state-dir', path.join(tmp.dir, 'fat-labels')], 'any-token-12345');
    expect(fat.code).toBe(2);
    expect(plainLines(fat.stderr)).toEqual([
      expect.stringMatching(/^vmpilot: error: --label .*: expected labels of at most 4096 bytes of JSON in all \(the server's limit\), not 50\d\d: keep fewer or shorter labels$/),
    ]);
    expect(await admin(server.url).pilots()).toHaveLength(before);
  });
});
