/**
 * The generated bootstrap run for real, with no batch system or cloud-init:
 * - a PBS job script (run in the environment a Torque job has, by
 *   test/fixtures/pbs/pbs-job.sh) made with `--ca-file` fetches the agent
 *   from a server whose TLS certificate a CA of the test's own signed
 *   (openssl), with curl, with wget and with python3, and its agent trusts
 *   that CA too; made without it, the fetch is refused;
 * - the PBS script honours `--drain-before` (PBS has no signal for it: the
 *   agent drains that long before its deadline), with `--pbs pro`'s
 *   `select=1:ncpus=N`;
 * - the user-data's fetch script (its paths moved under a test directory)
 *   trusts the CA as well, and its 31 MiB download says its size and its
 *   progress: lines at 25, 50, 75 and 100 % in a log, a line updated in
 *   place on a terminal (script(1) gives it one). A TCP proxy slows the
 *   download as a far-away server would.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server as TcpServer } from 'node:net';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PilotView } from '../../src/protocol/index.js';
import { makeBatchScript } from './delivery/batch-harness.js';
import { ADMIN_TOKEN, AGENT, FIXTURES, PILOT_TOKEN, SERVER, killAll, runCommand, startServer, tempDir, waitFor, type Server } from './harness.js';

const PBS_JOB = path.join(FIXTURES, 'pbs/pbs-job.sh');

/** A CA (CA:TRUE) and a certificate for 127.0.0.1 it signed, made with openssl. */
function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  const f = (name: string) => path.join(dir, name);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=vmpilot bootstrap test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1');
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  ssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', '2', '-extfile', f('ext.cnf'));
  // an IGTF-style file: text around the certificate, which the generator drops
  writeFileSync(f('ca-bundle.pem'), `# the test's own CA\nsubject=/CN=vmpilot bootstrap test CA\n${readFileSync(f('ca.pem'), 'utf8')}`);
  return { ca: f('ca-bundle.pem'), cert: f('server.pem'), key: f('server.key') };
}

/** Passes bytes on at `bytesPerSec` at most: a far-away server. */
class Throttle extends Transform {
  private sent = 0;
  private readonly t0 = Date.now();
  constructor(private readonly bytesPerSec: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.sent += chunk.length;
    this.push(chunk);
    const wait = this.t0 + (this.sent / this.bytesPerSec) * 1000 - Date.now();
    if (wait > 0) setTimeout(done, wait);
    else done();
  }
}

/** A TCP proxy on 127.0.0.1 to `target` whose answers come at `bytesPerSec` (TLS passes through it untouched). */
async function slowProxy(target: string, bytesPerSec: number): Promise<{ port: number; close: () => Promise<void> }> {
  const to = new URL(target);
  const sockets = new Set<import('node:net').Socket>();
  const server: TcpServer = createServer((client) => {
    const upstream = createConnection({ host: to.hostname, port: Number(to.port) });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    client.pipe(upstream);
    upstream.pipe(new Throttle(bytesPerSec)).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A directory of links to every program on this PATH but `without` (a node with no curl, say). */
function pathWithout(dir: string, without: string[]): string {
  mkdirSync(dir, { recursive: true });
  const dirs = [path.dirname(process.execPath), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
  for (const d of dirs) {
    if (!existsSync(d)) continue;
    for (const name of readdirSync(d)) {
      if (without.includes(name) || existsSync(path.join(dir, name))) continue;
      symlinkSync(path.join(d, name), path.join(dir, name));
    }
  }
  return dir;
}

/** Run `script` as the Torque job `jobId` (pbs-job.sh) with 1 core and `walltimeSec`; its status and output. */
async function runPbsJob(jobId: string, walltimeSec: number, workDir: string, script: string, env: Record<string, string> = {}) {
  const file = path.join(workDir, `${jobId}.sh`);
  writeFileSync(file, script, { mode: 0o755 });
  const code = await new Promise<number | null>((resolve) => {
    execFile('/bin/bash', [PBS_JOB, jobId, '1', String(walltimeSec), workDir, file], { timeout: 180_000, env: { ...process.env, ...env } }, (err) =>
      resolve(err ? (typeof err.code === 'number' ? err.code : null) : 0),
    );
  });
  const name = /^#PBS -N (\S+)/m.exec(script)?.[1] ?? `${jobId}.sh`;
  const output = path.join(workDir, `${name}.o${jobId.split('.')[0]}`);
  return { code, output: existsSync(output) ? readFileSync(output, 'utf8') : `(no ${output})` };
}

describe('bootstrap scripts, run for real', () => {
  const tmp = tempDir('vmpilot-bootstrap-scripts-');
  let certs: ReturnType<typeof makeCertificates>;
  let server: Server;

  beforeAll(async () => {
    chmodSync(tmp.dir, 0o755);
    certs = makeCertificates(tmp.dir);
    server = await startServer(path.join(tmp.dir, 'server.db'), ['--tls-cert', certs.cert, '--tls-key', certs.key]);
  });
  afterAll(async () => {
    await server?.stop();
    killAll();
    tmp.cleanup();
  });

  /** A PBS job script for the TLS server, the bundle agent, work and cache in the test's directory. */
  const pbsScript = (name: string, extra: string[]) =>
    makeBatchScript('pbs', server.url, [
      '--agent', 'bundle', '--cores', '1', '--walltime', '600', '--idle-timeout', '2', '--grace', '2', '--job-name', name,
      '--cache-dir', path.join(tmp.dir, `cache-${name}`), '--work-dir', tmp.dir, ...extra,
    ]);

  it('--ca-file: the fetch (curl, wget, python3) and the agent trust the private CA; without it the fetch is refused', async () => {
    const noCa = await runPbsJob('100.pbs.test.invalid', 300, tmp.dir, await pbsScript('noca', []));
    expect(noCa.code, noCa.output).toBe(15);
    expect(noCa.output).toMatch(/vmpilot bootstrap: cannot download https:\/\/127\.0\.0\.1:\d+\/v1\/agent\/vmpilot\.cjs/);
    expect(noCa.output).not.toMatch(/"msg":"registered"/);

    const tools = [
      { tool: 'curl', without: [] as string[] },
      { tool: 'wget', without: ['curl'] },
      { tool: 'python3', without: ['curl', 'wget'] },
    ];
    let seq = 200;
    for (const { tool, without } of tools) {
      // a cache of its own: every tool downloads
      const script = await pbsScript(`withca-${tool}`, ['--ca-file', certs.ca, '--drain-before', '60']);
      // the certificate is embedded, and only it: the comment lines around it are not
      expect(script).toContain(`cat > "$work/ca.pem" <<'VMPILOT_CA'\n-----BEGIN CERTIFICATE-----\n`);
      expect(script).not.toContain('subject=/CN=');
      const env = { PATH: pathWithout(path.join(tmp.dir, `bin-${tool}`), without) };
      const jobId = `${seq++}.pbs.test.invalid`;
      const job = await runPbsJob(jobId, 300, tmp.dir, script, env);
      expect(job.code, `${tool}:\n${job.output}`).toBe(0);
      expect(job.output).toMatch(
        new RegExp(`vmpilot bootstrap: downloading https://127\\.0\\.0\\.1:\\d+/v1/agent/vmpilot\\.cjs \\(0\\.\\d MiB\\) with ${tool}, trusting the CA in ${tmp.dir}/vmpilot-job-\\d+/ca\\.pem\n`),
      );
      expect(job.output).toMatch(/vmpilot bootstrap: 100 % \(0\.\d MiB in \d+ s\)/);
      // the agent registered over TLS with the same CA, and halted for want of work
      expect(job.output).toMatch(/"msg":"registered"/);
      expect(job.output).toMatch(/"exitStatus":0,"msg":"exit"/);
      const id = jobId.split('.')[0];
      expect(readFileSync(path.join(tmp.dir, `vmpilot-job-${id}`, 'ca.pem'), 'utf8')).toBe(readFileSync(path.join(tmp.dir, 'ca.pem'), 'utf8'));
    }
  });

  it('PBS honours --drain-before (the agent drains that long before the job ends), with --pbs pro resources', async () => {
    const api = await trustedApi();
    const go = path.join(tmp.dir, 'go-drain');
    const long = await api.submit({ command: ['/bin/sh', '-c', `while [ ! -e ${go} ]; do sleep 0.1; done`], group: 'batch' });
    const script = await pbsScript('drainer', ['--ca-file', certs.ca, '--pbs', 'pro', '--drain-before', '125', '--idle-timeout', '600']);
    expect(script).toMatch(/^#PBS -l select=1:ncpus=1$/m);
    expect(script).not.toMatch(/nodes=1:ppn/);
    const known = (await api.pilots()).length;
    // the job has 130 s of wall time: the agent must drain 125 s before its end, about 5 s after it starts
    const job = runPbsJob('300.pbs.test.invalid', 130, tmp.dir, script);
    await waitFor('the long payload to run', async () => (await api.job(long)).state === 'running', 60_000);
    await waitFor('the pilot to drain', async () => (await api.pilots())[known]?.state === 'draining', 60_000);
    // why, in the agent's own log (the job's output so far)
    const output = path.join(tmp.dir, 'drainer.o300');
    const reason = await waitFor('the drain in the agent log', () => /"to":"draining","reason":"(deadline in \d+ s)"/.exec(readFileSync(output, 'utf8'))?.[1]);
    // counted to the deadline minus the grace (2 s): 123 s, give or take the start-up
    expect(Number(/\d+/.exec(reason)![0]), reason).toBeGreaterThan(100);
    const later = await api.submit({ command: ['/bin/true'], group: 'batch' });
    writeFileSync(go, '');
    const done = await job;
    expect(done.code, done.output).toBe(0);
    expect((await api.job(long)).state).toBe('done');
    // drained: it took nothing more
    expect((await api.job(later)).state).toBe('queued');
    expect((await api.pilots())[known]).toMatchObject({ state: 'halted', shutdownCode: 100, externalId: '300.pbs.test.invalid' });
    await api.kill(later);
  });

  it("user-data --ca-file: its fetch script trusts the CA and says the 31 MiB download's size and progress; its agent trusts the CA", async () => {
    const proxy = await slowProxy(server.url, 4 * 1024 * 1024);
    try {
      const url = `https://127.0.0.1:${proxy.port}`;
      const made = await runCommand([SERVER, 'user-data', '--server', url, '--ca-file', certs.ca], { VMPILOT_PILOT_TOKEN: PILOT_TOKEN });
      expect(made.code, made.stderr).toBe(0);
      const doc = parse(made.stdout) as { write_files: { path: string; content: string; permissions: string }[] };
      const files = new Map(doc.write_files.map((w) => [w.path, w]));
      expect(files.get('/etc/vmpilot/ca.pem')?.content).toBe(readFileSync(path.join(tmp.dir, 'ca.pem'), 'utf8'));
      expect(parse(files.get('/etc/vmpilot/vmpilot.yaml')!.content)).toMatchObject({ caFile: '/etc/vmpilot/ca.pem', server: url });
      /** The VM's files under `root`, paths moved there, as cloud-init would write them. */
      const boot = (root: string) => {
        const moved = (text: string) =>
          text.replaceAll('/etc/vmpilot/', `${root}/etc/`).replaceAll('/var/cache/vmpilot', `${root}/cache`).replaceAll('/usr/local/lib/vmpilot/', `${root}/lib/`);
        for (const [p, w] of files) {
          const to = moved(p);
          mkdirSync(path.dirname(to), { recursive: true });
          writeFileSync(to, moved(w.content), { mode: parseInt(w.permissions, 8) });
        }
        return { fetch: `${root}/lib/fetch-agent.sh`, agent: `${root}/lib/vmpilot`, config: `${root}/etc/vmpilot.yaml` };
      };

      // in a log (the journal): the size, then 25, 50, 75 and 100 %
      const root1 = path.join(tmp.dir, 'vm1');
      const vm = boot(root1);
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve) =>
        execFile('/bin/sh', [vm.fetch], { timeout: 120_000 }, (err, _o, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stderr })),
      );
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stderr.trim().split('\n');
      expect(lines[0]).toMatch(new RegExp(`^vmpilot bootstrap: downloading ${url}/v1/agent/vmpilot-linux-x64\\.gz \\(3\\d\\.\\d MiB\\) with curl, trusting the CA in ${root1}/etc/ca\\.pem$`));
      const progress = lines.filter((l) => / %/.test(l)).map((l) => /: (\d+) %/.exec(l)?.[1]);
      expect(progress).toEqual(['25', '50', '75', '100']);
      expect(lines.find((l) => l.includes(': 50 %'))).toMatch(/^vmpilot bootstrap: 50 % \(1\d\.\d of 3\d\.\d MiB\)$/);
      expect(lines.at(-1)).toMatch(/^vmpilot bootstrap: agent .*\/cache\/vmpilot-[0-9a-f]{64} \(sha256 checked\)$/);
      expect(existsSync(vm.agent)).toBe(true);

      // on a terminal: one line updated in place (\r), not a line per step
      const vm2 = boot(path.join(tmp.dir, 'vm2'));
      const typescript = path.join(tmp.dir, 'typescript');
      // not execFileSync: the proxy runs in this process
      const tty = await new Promise<number | null>((resolve) =>
        execFile('script', ['-q', '-e', '-c', `/bin/sh ${vm2.fetch}`, typescript], { timeout: 120_000 }, (err) => resolve(err ? (typeof err.code === 'number' ? err.code : null) : 0)),
      );
      const seen = readFileSync(typescript, 'utf8');
      // on failure, what the script printed on its terminal (its stderr went there)
      expect(tty, seen.slice(-2000)).toBe(0);
      expect(seen).toMatch(/\rvmpilot bootstrap: \d+\.\d MiB of 3\d\.\d MiB \(\d+ %\)/);
      expect(seen).not.toMatch(/vmpilot bootstrap: 25 % \(/);

      // the agent of that VM trusts the CA its config names
      const known = (await (await trustedApi()).pilots()).length;
      const agent = await runCommand([AGENT, 'run', '--config', vm.config, '--state-dir', path.join(tmp.dir, 'vm1', 'state'), '--halt', 'exit', '--isolation', 'none', '--idle-timeout', '1', '--drain-file', path.join(tmp.dir, 'vm1', 'drain')], {
        VMPILOT_PILOT_TOKEN: PILOT_TOKEN,
      });
      expect(agent.code, agent.stderr).toBe(0);
      expect(((await (await trustedApi()).pilots()) as PilotView[]).length).toBe(known + 1);
    } finally {
      await proxy.close();
    }
  });

  /** The admin API of the TLS server, trusting the test's CA (through the admin CLI's client). */
  async function trustedApi() {
    const call = async <T>([command, ...args]: string[]): Promise<T> => {
      // the client options before the arguments: a payload's command ends the line after --
      const r = await runCommand([SERVER, command!, '--server', server.url, '--token', ADMIN_TOKEN, '--ca-file', certs.ca, ...args]);
      if (r.code !== 0) throw new Error(r.stderr);
      return JSON.parse(r.stdout) as T;
    };
    return {
      pilots: () => call<PilotView[]>(['pilots', '--json']),
      job: (id: number) => call<{ state: string }>(['job', String(id), '--json']),
      submit: async (req: { command: string[]; group?: string }) =>
        (await call<number[]>(['submit', '--json', ...(req.group ? ['--group', req.group] : []), '--', ...req.command]))[0]!,
      kill: (id: number) => call<unknown>(['kill', String(id), '--json']),
    };
  }
});
