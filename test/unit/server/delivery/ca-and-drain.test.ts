import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { batchScript, defaultDrainSec } from '../../../../src/server/delivery/batch-script.js';
import { batchScriptCommand } from '../../../../src/server/delivery/commands.js';
import { userData } from '../../../../src/server/delivery/user-data.js';
import { isVmpilotError } from '../../../../src/shared/errors.js';
import { batchOptions, userDataOptions } from './examples.js';

const dir = mkdtempSync(path.join(tmpdir(), 'vmpilot-ca-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'ca.key'), '-out', path.join(dir, 'ca.pem'), '-days', '1', '-subj', '/CN=unit CA'], { stdio: 'pipe' });
const pem = readFileSync(path.join(dir, 'ca.pem'), 'utf8');

const usage = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    expect(isVmpilotError(err, 'VMP_USAGE'), String(err)).toBe(true);
    return (err as Error).message;
  }
  throw new Error('no error');
};

describe('--ca-file', () => {
  it('embeds only the certificates, for the fetch and the agent (batch script: beside the job state)', () => {
    const script = batchScript(batchOptions({ ca: { file: 'ca.pem', pem: `some comment\n${pem}trailing text\n` } }));
    execFileSync('bash', ['-n'], { input: script });
    expect(script).toContain(`cat > "$work/ca.pem" <<'VMPILOT_CA'\n${pem}VMPILOT_CA\nexport VMPILOT_CA_FILE="$work/ca.pem"\n`);
    expect(script).not.toContain('some comment');
    // before anything is fetched
    expect(script.indexOf('export VMPILOT_CA_FILE')).toBeLessThan(script.indexOf('\nvmpilot_install_agent "$cache"'));
    expect(batchScript(batchOptions())).not.toContain('VMPILOT_CA_FILE=');
  });

  it('user-data writes it to /etc/vmpilot/ca.pem, names it in the agent config and the fetch script', () => {
    const doc = parse(userData(userDataOptions({ ca: { file: 'ca.pem', pem } }))) as { write_files: { path: string; content: string; permissions: string }[] };
    const file = (p: string) => doc.write_files.find((w) => w.path === p)!;
    expect(file('/etc/vmpilot/ca.pem')).toMatchObject({ content: pem, permissions: '0644' });
    expect(parse(file('/etc/vmpilot/vmpilot.yaml').content)).toMatchObject({ caFile: '/etc/vmpilot/ca.pem' });
    expect(file('/usr/local/lib/vmpilot/fetch-agent.sh').content).toContain('export VMPILOT_CA_FILE=/etc/vmpilot/ca.pem\n');
  });

  it('refuses a file with no certificate, or a broken one, naming the file', () => {
    expect(usage(() => batchScript(batchOptions({ ca: { file: 'key.pem', pem: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' } })))).toBe(
      '--ca-file key.pem: no PEM certificate in it (expected -----BEGIN CERTIFICATE----- blocks)',
    );
    const broken = '-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n';
    expect(usage(() => userData(userDataOptions({ ca: { file: 'bad.pem', pem: `${pem}${broken}` } })))).toMatch(/^--ca-file bad\.pem: certificate 2 of 2 is not a valid X\.509 certificate/);
  });
});

describe('PBS resources and the drain', () => {
  it('asks Torque for nodes=1:ppn=N, and PBS Professional (--pbs pro) for select=1:ncpus=N', () => {
    expect(batchScript(batchOptions({ system: 'pbs', cores: 8 }))).toMatch(/^#PBS -l nodes=1:ppn=8$/m);
    const pro = batchScript(batchOptions({ system: 'pbs', cores: 8, pbs: 'pro' }));
    expect(pro).toMatch(/^#PBS -l select=1:ncpus=8$/m);
    expect(pro).not.toMatch(/ppn=/);
    // PBS Professional sets NCPUS, not PBS_NUM_PPN, and lists the node once in PBS_NODEFILE
    expect(pro).toContain('cores=${PBS_NUM_PPN:-${PBS_NP:-${NCPUS:-');
    expect(usage(() => batchScript(batchOptions({ system: 'slurm', pbs: 'pro' })))).toBe('--pbs pro: only with --system pbs');
  });

  it('hands --drain-before to the agent on every system (PBS has no signal for it)', () => {
    for (const system of ['slurm', 'pbs', 'sge']) {
      expect(batchScript(batchOptions({ system, walltimeSec: 7200, drainSec: 600 }))).toMatch(/--lifetime "\$lifetime" --drain-before 600 /);
    }
  });

  it('without --drain-before, a short --walltime gets a quarter of it as drain, said on stderr, not a refusal of a flag never given', async () => {
    expect([defaultDrainSec(3600), defaultDrainSec(360), defaultDrainSec(359), defaultDrainSec(200), defaultDrainSec(120)]).toEqual([300, 300, 89, 50, 30]);
    const manifest = path.join(dir, 'agent-manifest.json');
    writeFileSync(manifest, JSON.stringify({ version: '1', files: [{ name: 'vmpilot-linux-x64', kind: 'executable', size: 10, sha256: 'a'.repeat(64) }] }));
    let out = '';
    let note = '';
    const flags = { system: 'slurm', server: 'https://pilots.example.org', pilotToken: 'token-12345678', manifest, walltime: '200' };
    await batchScriptCommand(flags, (s) => (out += s), (s) => (note += s));
    expect(out).toMatch(/^#SBATCH --signal=B:USR1@50$/m);
    expect(out).toContain('--drain-before 50 ');
    expect(note).toBe(
      'vmpilot-server: note: the job drains 50 s before its wall time ends (a quarter of --walltime 200): the default 300 s would leave less than the 60 s a drain must leave; give --drain-before SEC to choose\n',
    );
    // given, a drain that does not fit is refused, naming the flag the user gave
    await expect(batchScriptCommand({ ...flags, drainBefore: '300' }, () => undefined, () => undefined)).rejects.toThrow(/^--drain-before 300: expected a whole number from 0 to 140$/);
    // the default fits: nothing to say
    note = '';
    await batchScriptCommand({ ...flags, walltime: '3600' }, () => undefined, (s) => (note += s));
    expect(note).toBe('');
  });
});
