import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { batchScript } from '../../../../src/server/delivery/batch-script.js';
import { VM_PATHS, userData } from '../../../../src/server/delivery/user-data.js';
import { TEMPLATE_TOKEN, batchOptions, userDataOptions } from './examples.js';

const CRED = 'vmpi_0123456789abcdefABCDEF-_0123456789abcdef0123';

describe('a per-instance credential instead of the shared registration token', () => {
  it('user-data carries only the instance\'s credential, in the 0600 credential file', () => {
    const text = userData(userDataOptions({ token: undefined, instanceCredential: CRED }));
    const doc = parse(text) as { write_files: { path: string; permissions: string; content: string }[] };
    expect(doc.write_files.find((f) => f.path === VM_PATHS.credential)).toMatchObject({ permissions: '0600', content: `VMPILOT_PILOT_TOKEN='${CRED}'\n` });
    expect(text).not.toContain(TEMPLATE_TOKEN);
    expect(text.split(CRED)).toHaveLength(2);
  });

  it('a batch script carries only the instance\'s credential', () => {
    for (const system of ['slurm', 'pbs', 'sge']) {
      const text = batchScript(batchOptions({ system, token: undefined, instanceCredential: CRED }));
      expect(text).toContain(`export VMPILOT_PILOT_TOKEN='${CRED}'\n`);
      expect(text).not.toContain(TEMPLATE_TOKEN);
    }
  });

  it('refuses both at once, and a credential that could break the script', () => {
    expect(() => userData(userDataOptions({ instanceCredential: CRED }))).toThrow(/--pilot-token and an instance credential exclude each other/);
    expect(() => batchScript(batchOptions({ token: undefined, instanceCredential: "x'; reboot; '" }))).toThrow(/^instance credential "\(hidden\)": expected 8 to 512 characters/);
  });

  it('the shared token still works as before', () => {
    expect(batchScript(batchOptions())).toContain(`export VMPILOT_PILOT_TOKEN='${TEMPLATE_TOKEN}'\n`);
  });
});
