/**
 * The batch drivers' commands, against a recording runner that answers as
 * Slurm and Grid Engine do (their real runs: test/integration/delivery/director-slurm.test.ts),
 * and the ssh runner's quoting through a stand-in ssh that runs the remote
 * command with sh (test/fixtures/director/ssh).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BatchDriver } from '../../../../src/server/director/drivers/batch.js';
import { type CommandResult, type CommandRunner, LocalCommands, SshCommands } from '../../../../src/server/director/drivers/commands.js';
import { endpointsFrom } from '../../../../src/server/director/endpoint-config.js';
import type { BatchSettings, SshSettings } from '../../../../src/server/director/driver-settings.js';
import type { CreateRequest } from '../../../../src/server/director/ports.js';
import { FakeClock } from '../../../../src/shared/clock.js';
import { tempDir } from '../helpers.js';
import { TEMPLATE_AGENT } from '../delivery/examples.js';

const FIXTURES = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../fixtures/director');
const PREFIX = 'vmp-test-hpc-';
const CRED = 'vmpi_credential-of-this-instance-0123456789';

/** Answers sbatch/squeue/scancel as a one-node Slurm would, and records every call. */
class SlurmLike implements CommandRunner {
  readonly where = 'this host';
  readonly calls: { argv: readonly string[]; input?: string | undefined }[] = [];
  jobs = new Map<string, { name: string; state: string }>();
  private next = 100;

  async run(argv: readonly string[], o: { input?: string } = {}): Promise<CommandResult> {
    this.calls.push({ argv, input: o.input });
    const ok = (stdout = ''): CommandResult => ({ exitCode: 0, stdout, stderr: '' });
    if (argv[0] === 'sbatch') {
      const name = argv.find((a) => a.startsWith('--job-name='))!.slice('--job-name='.length);
      const id = String(this.next++);
      this.jobs.set(id, { name, state: 'PENDING' });
      return ok(`${id}\n`);
    }
    if (argv[0] === 'squeue') {
      const all = argv.includes('all');
      const rows = [...this.jobs].filter(([, j]) => all || !['COMPLETED', 'CANCELLED', 'FAILED'].includes(j.state));
      return ok(rows.map(([id, j]) => `${id}|${j.name}|${j.state}|2024-05-01T10:00:00\n`).join(''));
    }
    if (argv[0] === 'scancel') {
      const j = this.jobs.get(argv[1]!);
      if (!j || j.state === 'COMPLETED') return { exitCode: 1, stdout: '', stderr: `scancel: error: Kill job error on job id ${argv[1]}: Job/step already completing or completed\n` };
      j.state = 'CANCELLED';
      return ok();
    }
    return { exitCode: 127, stdout: '', stderr: `${argv[0]}: command not found\n` };
  }

  async close(): Promise<void> {}
}

const settings = (raw: Record<string, unknown> = {}, driver = 'slurm') =>
  endpointsFrom({ hpc: { driver, [driver]: raw, shapes: { node: { cores: 2, memoryMb: 1000, lifetimeSec: 3600 } } } }, 'test')[0]!.driver as BatchSettings;
const request = (key: string): CreateRequest => ({
  key,
  cores: 2,
  memoryMb: 1000,
  lifetimeSec: 3600,
  bootstrap: { serverUrl: 'https://pilots.example.org', credential: CRED, idleTimeoutSec: 120, graceSec: 10, lifetimeSec: 3600 },
});

describe('the slurm driver', () => {
  const make = (raw: Record<string, unknown> = {}) => {
    const commands = new SlurmLike();
    return { commands, driver: new BatchDriver({ settings: settings(raw), prefix: PREFIX, agent: TEMPLATE_AGENT, commands, clock: new FakeClock() }) };
  };

  it('submits the batch script with the instance\'s credential on stdin, named by the key', async () => {
    const { commands, driver } = make({ queue: 'debug', submitArgs: ['--qos=pilot'] });
    const r = await driver.create(request(`${PREFIX}k1`));
    expect(r).toMatchObject({ id: '100', key: `${PREFIX}k1`, state: 'pending' });
    const submit = commands.calls.find((c) => c.argv[0] === 'sbatch')!;
    expect(submit.argv).toEqual(['sbatch', '--parsable', `--job-name=${PREFIX}k1`, `--comment=vmpilot:${PREFIX}k1`, '--qos=pilot']);
    expect(submit.input).toContain(`export VMPILOT_PILOT_TOKEN='${CRED}'`);
    expect(submit.input).toMatch(/^#SBATCH --cpus-per-task=2$/m);
    expect(submit.input).toMatch(/^#SBATCH --time=01:00:00$/m);
    expect(submit.input).toMatch(/^#SBATCH --partition=debug$/m);
    expect(submit.input).toContain("VMPILOT_SERVER='https://pilots.example.org'");
  });

  it('a create with a used key finds the job, finished ones too, and submits nothing', async () => {
    const { commands, driver } = make();
    const a = await driver.create(request(`${PREFIX}k1`));
    commands.jobs.get(a.id)!.state = 'COMPLETED';
    const b = await driver.create(request(`${PREFIX}k1`));
    expect(b).toMatchObject({ id: a.id, state: 'ended' });
    expect(commands.calls.filter((c) => c.argv[0] === 'sbatch')).toHaveLength(1);
  });

  it('lists only this endpoint\'s jobs that hold something, and deleting a finished job is no error', async () => {
    const { commands, driver } = make();
    const a = await driver.create(request(`${PREFIX}k1`));
    const b = await driver.create(request(`${PREFIX}k2`));
    commands.jobs.set('999', { name: 'someone-elses-job', state: 'RUNNING' });
    commands.jobs.get(b.id)!.state = 'COMPLETED';
    expect((await driver.list()).map((r) => r.key)).toEqual([`${PREFIX}k1`]);
    await driver.delete(b.id);
    await driver.delete(a.id);
    expect(await driver.list()).toEqual([]);
    expect(commands.calls.filter((c) => c.argv[0] === 'scancel').map((c) => c.argv[1])).toEqual([b.id, a.id]);
  });

  it('a refused submit is VMP_DRIVER with the batch system\'s own words', async () => {
    const { commands, driver } = make();
    commands.run = async (argv) => (argv[0] === 'sbatch' ? { exitCode: 1, stdout: '', stderr: 'sbatch: error: invalid partition specified: gpu\n' } : { exitCode: 0, stdout: '', stderr: '' });
    await expect(driver.create(request(`${PREFIX}k1`))).rejects.toMatchObject({ code: 'VMP_DRIVER', message: 'sbatch on this host exited with 1: sbatch: error: invalid partition specified: gpu' });
  });
});

describe('the sge and pbs drivers', () => {
  const tmp = tempDir();
  afterAll(() => tmp.remove());

  it('write the script to a file in the jobs directory and qsub it from there', async () => {
    const record = path.join(tmp.dir, 'qsub.log');
    // stand-ins for qsub and qstat first on the PATH
    const commands = new LocalCommands({ PATH: `${FIXTURES}:${process.env.PATH}`, QSUB_RECORD: record });
    const driver = new BatchDriver({ settings: settings({ workDir: tmp.dir, sgePe: 'mpi' }, 'sge'), prefix: PREFIX, agent: TEMPLATE_AGENT, commands, clock: new FakeClock() });
    expect((await driver.create(request(`${PREFIX}k1`))).id).toBe('7');
    const [head, script] = readFileSync(record, 'utf8').split('---\n');
    expect(head).toBe(`cwd=${tmp.dir}/jobs\nargs=-N ${PREFIX}k1 ${PREFIX}k1.sh\n`);
    expect(script).toMatch(/^#\$ -pe mpi 2$/m);
    expect(script).toContain(`export VMPILOT_PILOT_TOKEN='${CRED}'`);
    expect(readFileSync(path.join(tmp.dir, 'jobs', `${PREFIX}k1.sh`), 'utf8')).toBe(script);
  });
});

describe('commands through ssh', () => {
  const tmp = tempDir();
  afterAll(() => tmp.remove());
  const ssh: SshSettings = { host: 'login.example.org', user: 'pilot', port: 2222, key: '/etc/vmpilot/id_ed25519', options: ['StrictHostKeyChecking=yes'], controlPersistSec: 60, reverse: null };

  it('share one connection, pass every argument through the remote shell intact, and set the endpoint\'s environment', async () => {
    const record = path.join(tmp.dir, 'ssh.log');
    process.env.SSH_RECORD = record;
    const runner = new SshCommands(ssh, { SLURM_CONF: '/etc/slurm test/slurm.conf' }, path.join(FIXTURES, 'ssh'));
    const r = await runner.run(['sh', '-c', 'printf "%s|" "$@"; printf "%s" "$SLURM_CONF"; cat', 'x', "it's", 'a b', '$HOME', ';reboot'], { input: 'the script\n' });
    expect(r).toEqual({ exitCode: 0, stdout: "it's|a b|$HOME|;reboot|/etc/slurm test/slurm.confthe script\n", stderr: '' });
    const args = readFileSync(record, 'utf8').split('\n')[0]!;
    expect(args).toMatch(/-o BatchMode=yes -o ControlMaster=auto -o ControlPath=\S+\/%C -o ControlPersist=60 /);
    expect(args).toContain('-p 2222 -i /etc/vmpilot/id_ed25519 -o IdentitiesOnly=yes -l pilot -o StrictHostKeyChecking=yes login.example.org --');
    await runner.close();
    expect(readFileSync(record, 'utf8')).toMatch(/-O exit login\.example\.org/);
    delete process.env.SSH_RECORD;
  });

  it('an ssh failure (255) is VMP_DRIVER naming the login node', async () => {
    const runner = new SshCommands(ssh, {}, path.join(FIXTURES, 'ssh'));
    await expect(runner.run(['sh', '-c', 'echo "Permission denied (publickey)." >&2; exit 255'])).rejects.toMatchObject({ code: 'VMP_DRIVER', message: 'ssh to pilot@login.example.org failed: Permission denied (publickey).' });
    await runner.close();
  });
});
