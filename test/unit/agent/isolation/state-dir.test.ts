import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PayloadIsolation } from '../../../../src/agent/isolation/payload-isolation.js';
import type { IsolationPlan } from '../../../../src/agent/isolation/plan.js';

const slotUsers: IsolationPlan = { mode: 'slot-users', containment: 'uid', account: null, notes: [] };
const none: IsolationPlan = { mode: 'none', containment: 'process-tree', account: null, notes: [] };
const iso = (plan: IsolationPlan, stateDir: string) => new PayloadIsolation(plan, { stateDir, secretFiles: [], uid: 0, gid: 0, mapUser: false, slots: null });

describe('the state directory the isolation relies on', () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('payloads as other accounts: 0711, and a parent closed to others is refused at start, naming it', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'vmp-iso-')); // 0700, as mkdtemp makes it
    const stateDir = path.join(dir, 'state');
    const err = await iso(slotUsers, stateDir).prepareStateDir().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'VMP_CONFIG', message: expect.stringContaining(`${dir} is mode 0700, closed to others`) });
  });

  it('payloads as other accounts under parents others can pass: 0711 state and payloads directories', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'vmp-iso-'));
    chmodSync(dir, 0o711);
    const stateDir = path.join(dir, 'state');
    await iso(slotUsers, stateDir).prepareStateDir();
    expect(statSync(stateDir).mode & 0o777).toBe(0o711);
    expect(statSync(path.join(stateDir, 'payloads')).mode & 0o777).toBe(0o711);
  });

  it('payloads as the agent user: 0700, and a closed parent is no problem', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'vmp-iso-'));
    const stateDir = path.join(dir, 'state');
    await iso(none, stateDir).prepareStateDir();
    expect(statSync(stateDir).mode & 0o777).toBe(0o700);
  });
});
