import { describe, expect, it } from 'vitest';
import { planIsolation, type IsolationFacts } from '../../../../src/agent/isolation/plan.js';

const facts = (f: Partial<IsolationFacts>): IsolationFacts => ({
  choice: 'auto',
  root: false,
  payloadUser: null,
  slotAccounts: 'not tried',
  nobody: { name: 'nobody', uid: 65534, gid: 65534 },
  bwrap: true,
  unshare: true,
  cgroup: 'not tried',
  ...f,
});

describe('planIsolation', () => {
  it('as root: an account per slot in a cgroup; the one --payload-user when given; nobody when no account can be made', () => {
    expect(planIsolation(facts({ root: true, slotAccounts: true, cgroup: 1 }))).toMatchObject({ mode: 'slot-users', containment: 'cgroup-v1', account: null });
    expect(planIsolation(facts({ root: true, slotAccounts: true, cgroup: 'no writable cgroup' }))).toMatchObject({ mode: 'slot-users', containment: 'uid', notes: ['no cgroup per payload: no writable cgroup'] });
    const pu = { name: 'pilot', uid: 1001, gid: 1001 };
    expect(planIsolation(facts({ root: true, payloadUser: pu, slotAccounts: true, cgroup: 2 }))).toMatchObject({ mode: 'payload-user', containment: 'cgroup-v2', account: pu });
    expect(planIsolation(facts({ root: true, slotAccounts: 'no useradd', cgroup: 'none' }))).toMatchObject({ mode: 'payload-user', containment: 'process-tree', account: { name: 'nobody' } });
    expect(planIsolation(facts({ root: true, slotAccounts: 'no useradd', nobody: null, cgroup: 1 }))).toMatchObject({ mode: 'none', containment: 'process-tree' });
  });

  it('not root: bwrap, else unshare, else none, each saying why the stronger one was not had', () => {
    expect(planIsolation(facts({}))).toMatchObject({ mode: 'bwrap', containment: 'pid-namespace' });
    expect(planIsolation(facts({ bwrap: 'bwrap is not installed' }))).toMatchObject({ mode: 'unshare', containment: 'pid-namespace', notes: ['bwrap: bwrap is not installed'] });
    expect(planIsolation(facts({ bwrap: 'bwrap is not installed', unshare: 'no user namespaces' }))).toMatchObject({
      mode: 'none',
      containment: 'process-tree',
      notes: ['bwrap: bwrap is not installed', 'unshare: no user namespaces'],
    });
    expect(planIsolation(facts({ payloadUser: { name: 'x', uid: 5, gid: 5 } })).notes).toContain('--payload-user is ignored: the agent is not root');
  });

  it('--isolation none is none, whoever runs the agent', () => {
    expect(planIsolation(facts({ choice: 'none', root: true, slotAccounts: true, cgroup: 1 }))).toMatchObject({ mode: 'none', containment: 'process-tree' });
  });

  it('a tool asked for that does not work, or one asked for as root, is a clear configuration error', () => {
    expect(() => planIsolation(facts({ choice: 'bwrap', bwrap: 'bwrap is not installed' }))).toThrow(/isolation "bwrap" cannot be used here: bwrap is not installed; expected auto or none/);
    expect(planIsolation(facts({ choice: 'unshare', bwrap: true }))).toMatchObject({ mode: 'unshare' });
    expect(() => planIsolation(facts({ choice: 'unshare', root: true }))).toThrow(/the agent runs as root, where payloads run as unprivileged accounts; expected auto \(or none\)/);
  });
});
