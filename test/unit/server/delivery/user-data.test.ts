import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SYSTEMD_UNIT, VM_PATHS, userData } from '../../../../src/server/delivery/user-data.js';
import { isVmpilotError } from '../../../../src/shared/errors.js';
import { TEMPLATE_TOKEN, unstamped, userDataOptions } from './examples.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
type Doc = { write_files: { path: string; permissions: string; content: string }[]; runcmd: string[][]; packages?: string[] };

const usageError = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    expect(isVmpilotError(err, 'VMP_USAGE'), String(err)).toBe(true);
    return (err as Error).message;
  }
  throw new Error('no error');
};

describe('userData', () => {
  it('writes the config and the credential mode 0600, the fetch script and the unit, and starts the unit', () => {
    const text = userData(userDataOptions({ cores: 4, lifetimeSec: 3600 }));
    expect(text.startsWith('#cloud-config\n')).toBe(true);
    const doc = parse(text) as Doc;
    const file = (p: string) => doc.write_files.find((f) => f.path === p)!;
    expect(file(VM_PATHS.credential)).toMatchObject({ permissions: '0600', content: `VMPILOT_PILOT_TOKEN='${TEMPLATE_TOKEN}'\n` });
    expect(parse(file(VM_PATHS.config).content)).toEqual({ server: 'https://pilots.example.org:8080', halt: 'poweroff', stateDir: '/var/lib/vmpilot', idleTimeoutSec: 300, graceSec: 30, cores: 4, lifetimeSec: 3600 });
    expect(file(VM_PATHS.config).permissions).toBe('0600');
    expect(file(VM_PATHS.fetch).content).toContain(`vmpilot_agent_run_sha256='${'2'.repeat(64)}'`);
    expect(file(VM_PATHS.unit).content).toBe(SYSTEMD_UNIT);
    expect(doc.runcmd).toContainEqual(['systemctl', 'start', '--no-block', 'vmpilot.service']);
    // the token is only in the 0600 credential file
    expect(text.split(TEMPLATE_TOKEN)).toHaveLength(2);
  });

  it('restarts a crashed agent but not a halted one', () => {
    expect(SYSTEMD_UNIT).toMatch(/^Restart=on-failure$/m);
    expect(SYSTEMD_UNIT).toMatch(/^RestartPreventExitStatus=14 15 16 17$/m);
    expect(SYSTEMD_UNIT).toMatch(/^ConditionPathExists=!\/var\/lib\/vmpilot\/shutdown_message$/m);
    expect(SYSTEMD_UNIT).toMatch(/^ExecStartPre=\/usr\/local\/lib\/vmpilot\/fetch-agent.sh$/m);
  });

  it('names the bad option instead of writing bad user-data', () => {
    expect(usageError(() => userData(userDataOptions({ server: 'pilots.example.org' })))).toMatch(/^--server "pilots.example.org": expected an http/);
    expect(usageError(() => userData(userDataOptions({ halt: 'poweroff\nrm -rf /' })))).toMatch(/^--halt/);
    expect(usageError(() => userData(userDataOptions({ packages: ['curl; reboot'] })))).toMatch(/^--package "curl; reboot"/);
    expect(usageError(() => userData(userDataOptions({ sshKeys: ['not a key'] })))).toMatch(/^--ssh-key/);
    expect(usageError(() => userData(userDataOptions({ lifetimeSec: 5 })))).toBe('--lifetime 5: expected a whole number from 60 to 31622400');
    expect(usageError(() => userData(userDataOptions({ agent: { file: 'vmpilot.cjs', sha256: '3'.repeat(64), runSha256: '3'.repeat(64), kind: 'bundle' } })))).toMatch(/^--agent bundle/);
  });

  it('cloud-init/vmpilot.yaml and packaging/vmpilot.service are what the generator writes', () => {
    expect(unstamped(readFileSync(path.join(ROOT, 'cloud-init/vmpilot.yaml'), 'utf8')), 'regenerate: see cloud-init/README.md').toBe(unstamped(userData(userDataOptions())));
    expect(readFileSync(path.join(ROOT, 'packaging/vmpilot.service'), 'utf8')).toBe(SYSTEMD_UNIT);
  });
});
