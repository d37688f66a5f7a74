import { describe, expect, it } from 'vitest';
import type { DriverResource, InstanceRecord, PilotSummary } from '../../../../src/server/director/ports.js';
import { type ReconcileInput, type Step, SHUTDOWN_REPORT_GRACE_SEC, reconcile } from '../../../../src/server/director/reconcile.js';
import { T0, endpoint, instance, pilot } from './fixtures.js';

const ep = endpoint('a', { timeouts: { bootSec: 300, registrationSec: 120, maxLifetimeSec: 3600, drainGraceSec: 600, stalledGraceSec: 300, orphanSec: 600 } });
const res = (key: string, o: Partial<DriverResource> = {}): DriverResource => ({ id: `d-${key}`, key, state: 'running', createdAt: T0, detail: '', ...o });
const run = (instances: InstanceRecord[], o: { now?: number; pilots?: PilotSummary[]; listed?: DriverResource[] | null; inFlight?: number[]; orphansSeen?: Map<string, number> } = {}) =>
  reconcile({
    now: o.now ?? T0,
    instances,
    pilots: new Map((o.pilots ?? []).map((p) => [p.id, p])),
    endpoints: new Map([['a', ep]]),
    listings: new Map([['a', o.listed === undefined ? [] : o.listed]]),
    inFlight: new Set(o.inFlight ?? []),
    orphansSeen: o.orphansSeen ?? new Map(),
  } satisfies ReconcileInput);
const kinds = (steps: Step[]) => steps.map((s) => (s.kind === 'mark' ? `mark ${s.change.state}` : s.kind));
const sec = (n: number) => T0 + n * 1000;

describe('reconcile: after a restart', () => {
  it('adopts a requested instance whose key the driver lists: the create had reached it', () => {
    const i = instance(1);
    const r = run([i], { listed: [res(i.key, { state: 'pending' })] });
    expect(r.steps).toEqual([{ kind: 'mark', instance: i, change: { state: 'starting', reason: `adopted d-${i.key}: the create had been made before a restart`, driverId: `d-${i.key}` } }]);
  });

  it('issues the create again, with the same key, when the driver does not list it; never while this process makes it', () => {
    expect(kinds(run([instance(1)]).steps)).toEqual(['create']);
    expect(run([instance(1)], { inFlight: [1] }).steps).toEqual([]);
  });

  it('trusts a failed listing for nothing: no create again, no vanished, no orphan', () => {
    const old = instance(2, { state: 'booting', startedAt: sec(-3600), bootedAt: sec(-3600), driverId: 'd' });
    expect(run([instance(1), old], { listed: null, now: sec(0) }).steps.map((s) => s.kind)).toEqual(['mark', 'remove']);
    // (only the registration timeout of the old one, which needs no listing)
    expect(run([instance(1)], { listed: null }).steps).toEqual([]);
  });
});

describe('reconcile: booting', () => {
  const starting = instance(1, { state: 'starting', startedAt: T0, driverId: 'd-vmp-test-a-k1' });

  it('moves starting to booting when the driver says it runs, and to registered when its pilot registered', () => {
    expect(kinds(run([starting], { listed: [res(starting.key)] }).steps)).toEqual(['mark booting']);
    const r = run([{ ...starting, pilotId: 5 }], { listed: [res(starting.key)], pilots: [pilot(5, { registeredAt: sec(40) })] });
    expect(kinds(r.steps)).toEqual(['mark registered']);
    expect(r.learnt).toEqual([{ key: 'a/s', kind: 'boot', sec: 40 }]);
  });

  it('terminates what is not running by the boot timeout, and what has no pilot by the registration timeout; the offering backs off', () => {
    const late = run([starting], { listed: [res(starting.key, { state: 'pending' })], now: sec(301) });
    expect(kinds(late.steps)).toEqual(['mark failed', 'remove']);
    expect(late.learnt).toEqual([{ key: 'a/s', kind: 'failure', failure: 'boot-timeout', reason: 'boot timeout: not running 300 s after the create' }]);
    const booting = { ...starting, state: 'booting' as const, bootedAt: sec(10) };
    expect(run([booting], { listed: [res(booting.key)], now: sec(130) }).steps).toEqual([]);
    const noPilot = run([booting], { listed: [res(booting.key)], now: sec(131) });
    expect(kinds(noPilot.steps)).toEqual(['mark failed', 'remove']);
    expect(noPilot.learnt[0]).toMatchObject({ failure: 'registration-timeout' });
    expect((noPilot.steps[1] as Extract<Step, { kind: 'remove' }>).driverId).toBe('d-vmp-test-a-k1');
  });

  it('a machine that ended or vanished before its pilot registered fizzled', () => {
    const ended = run([starting], { listed: [res(starting.key, { state: 'ended', detail: 'exit 15' })] });
    expect(kinds(ended.steps)).toEqual(['mark failed', 'remove']);
    expect(ended.learnt[0]).toMatchObject({ failure: 'fizzle', reason: 'its machine ended before its pilot registered (exit 15)' });
    // listings may lag just after the create: not vanished yet
    expect(run([starting], { now: sec(59) }).steps).toEqual([]);
    const gone = run([starting], { now: sec(61) });
    expect(kinds(gone.steps)).toEqual(['mark failed', 'remove']);
    expect((gone.steps[0] as Extract<Step, { kind: 'mark' }>).change.reason).toMatch(/^vanished: the driver no longer lists/);
  });
});

describe('reconcile: discarding', () => {
  const reg = instance(1, { state: 'registered', pilotId: 5, startedAt: T0, driverId: 'd1' });
  const listed = [res(reg.key, { id: 'd1' })];

  it('deletes an instance whose pilot halted, and judges its end for the offering', () => {
    const good = run([reg], { listed, now: sec(2000), pilots: [pilot(5, { state: 'halted', shutdownCode: 300, payloadsRun: 4, haltedAt: sec(1990) })] });
    expect(kinds(good.steps)).toEqual(['mark halted', 'remove']);
    expect(good.learnt).toEqual([{ key: 'a/s', kind: 'end', noWork: false }, { key: 'a/s', kind: 'success' }]);
    const fizzled = run([reg], { listed, now: sec(40), pilots: [pilot(5, { state: 'halted', shutdownCode: 500, haltedAt: sec(30) })] });
    expect(fizzled.learnt.map((l) => l.kind)).toEqual(['end', 'failure']);
  });

  it('waits for the shutdown report of a pilot that said it halted, until its machine ends or the grace is over', () => {
    const saidHalted = [pilot(5, { state: 'halted', shutdownCode: null, payloadsRun: 1, haltedAt: sec(30) })];
    // the VM is still powering off and the shutdown report is on its way: not deleted under it, not judged
    const early = run([reg], { listed, now: sec(40), pilots: saidHalted });
    expect(early.steps).toEqual([]);
    expect(early.learnt).toEqual([]);
    const ended = run([reg], { listed: [res(reg.key, { id: 'd1', state: 'ended' })], now: sec(40), pilots: saidHalted });
    expect(kinds(ended.steps)).toEqual(['mark halted', 'remove']);
    expect(kinds(run([reg], { listed, now: sec(60), pilots: saidHalted }).steps)).toEqual(['mark halted', 'remove']);
  });

  it('terminates an instance whose pilot stalled past the grace', () => {
    expect(run([reg], { listed, now: sec(300), pilots: [pilot(5, { state: 'stalled', stalledAt: T0 })] }).steps).toEqual([]);
    const r = run([reg], { listed, now: sec(301), pilots: [pilot(5, { state: 'stalled', stalledAt: T0 })] });
    expect(kinds(r.steps)).toEqual(['mark failed', 'remove']);
    expect(r.learnt).toEqual([]);
  });

  it('drains at the maximum lifetime, terminates after the drain grace if still there', () => {
    const live = [pilot(5)];
    expect(run([reg], { listed, now: sec(3599), pilots: live }).steps).toEqual([]);
    const drain = run([reg], { listed, now: sec(3600), pilots: live });
    expect(drain.steps).toEqual([{ kind: 'drain', instance: reg, pilotId: 5, reason: 'maximum lifetime of 3600 s reached' }]);
    const drained = { ...reg, drainAt: sec(3600) };
    expect(run([drained], { listed, now: sec(4199), pilots: live }).steps).toEqual([]);
    expect(kinds(run([drained], { listed, now: sec(4200), pilots: live }).steps)).toEqual(['mark failed', 'remove']);
  });

  it('marks an instance whose resource vanished, or whose machine ended while its pilot did not halt', () => {
    const gone = run([reg], { listed: [], now: sec(100), pilots: [pilot(5)] });
    expect(kinds(gone.steps)).toEqual(['mark failed', 'remove']);
    const ended = run([reg], { listed: [res(reg.key, { id: 'd1', state: 'ended' })], now: sec(100), pilots: [pilot(5)] });
    expect((ended.steps[0] as Extract<Step, { kind: 'mark' }>).change.reason).toMatch(/^its machine ended/);
  });

  it("a machine that ended just after its pilot's last contact waits for the pilot's last reports (an agent exits right after it reported its halt), then is judged", () => {
    const ended = [res(reg.key, { id: 'd1', state: 'ended' })];
    const recent = [pilot(5, { lastContactAt: sec(95) })];
    expect(run([reg], { listed: ended, now: sec(100), pilots: recent }).steps).toEqual([]);
    // the halt report came: a halt like any other, not a failure
    const halted = run([reg], { listed: ended, now: sec(101), pilots: [pilot(5, { lastContactAt: sec(100), state: 'halted', shutdownCode: 300, haltedAt: sec(100), payloadsRun: 1 })] });
    expect(kinds(halted.steps)).toEqual(['mark halted', 'remove']);
    // no report within the grace: failed
    expect(kinds(run([reg], { listed: ended, now: sec(95 + SHUTDOWN_REPORT_GRACE_SEC), pilots: recent }).steps)).toEqual(['mark failed', 'remove']);
  });

  it('deletes halted and failed instances at their driver', () => {
    const r = run([instance(1, { state: 'halted', driverId: 'd1' }), instance(2, { state: 'failed' })]);
    expect(r.steps.map((s) => (s.kind === 'remove' ? s.driverId : s.kind))).toEqual(['d1', null]);
  });
});

describe('reconcile: orphans', () => {
  it('removes a resource tagged ours that no record knows, only after it was seen for the orphan time', () => {
    const orphan = res('vmp-test-a-stray');
    const first = run([], { listed: [orphan] });
    expect(first.steps).toEqual([]);
    expect([...first.orphansSeen]).toEqual([['a/vmp-test-a-stray', T0]]);
    expect(run([], { listed: [orphan], now: sec(599), orphansSeen: first.orphansSeen }).steps).toEqual([]);
    expect(run([], { listed: [orphan], now: sec(600), orphansSeen: first.orphansSeen }).steps).toEqual([{ kind: 'remove-orphan', endpoint: 'a', resource: orphan }]);
    // one that is no longer listed is forgotten
    expect(run([], { listed: [], now: sec(600), orphansSeen: first.orphansSeen }).orphansSeen.size).toBe(0);
  });

  it('leaves instances of an endpoint no longer configured alone, and says so', () => {
    const r = run([instance(1, { endpoint: 'gone' })]);
    expect(r.steps).toEqual([]);
    expect(r.unmanaged.map((i) => i.id)).toEqual([1]);
  });
});
