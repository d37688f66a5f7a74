import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { FakeControlPlane } from '../../../../src/agent/control/fake-control-plane.js';
import { FileStateStore } from '../../../../src/agent/state/file-store.js';
import { MemoryStateStore } from '../../../../src/agent/state/memory-store.js';
import { BATCH_BYTES, Outbox, backoffMs } from '../../../../src/agent/state/outbox.js';
import { StateKeeper, emptyState } from '../../../../src/agent/state/state-keeper.js';
import { FakeClock } from '../../../../src/shared/clock.js';
import { silentLogger } from '../../../../src/shared/log.js';
import { VmpilotError } from '../../../../src/shared/errors.js';

/** How long to wait for an event (the code under test has no reason to take long). */
const WAIT = { timeout: 10_000, interval: 2 };

function setup() {
  const store = new MemoryStateStore();
  const keeper = new StateKeeper(store, emptyState('http://s'));
  const control = new FakeControlPlane();
  const clock = new FakeClock();
  const outbox = new Outbox(keeper, control, clock, silentLogger(), () => undefined, 2);
  return { store, keeper, control, clock, outbox };
}

describe('Outbox', () => {
  it('saves a report before sending it', async () => {
    const { store, outbox, control } = setup();
    await outbox.add({ type: 'state', state: 'serving', reason: 'registered' });
    expect(store.saved?.outbox.map((r) => r.seq)).toEqual([1]);
    expect(control.batches).toHaveLength(0);
  });

  it('never sends a report before it is saved, so a crash cannot reuse a seq the server already applied', async () => {
    const { store, keeper, outbox, control } = setup();
    await outbox.add({ type: 'state', state: 'serving', reason: 'registered' });
    // the next save takes its time: the report is numbered and in the outbox, but not on disk yet
    let release!: () => void;
    const slowSave = store.save.bind(store);
    store.save = (state) => new Promise<void>((resolve) => (release = () => void slowSave(state).then(resolve)));
    const adding = outbox.add({ type: 'payload-started', payloadId: 7 });
    await vi.waitFor(() => expect(keeper.state.outbox.map((r) => r.seq)).toEqual([1, 2]), WAIT);
    const flushing = outbox.flushOnce();
    // a batch went out while seq 2 was still being saved: it held only the saved one, so a crash now
    // would restart from seq 1 on disk, and seq 2 is still unused
    await vi.waitFor(() => expect(control.batches).toHaveLength(1), WAIT);
    expect(control.batches[0]!.map((r) => r.seq)).toEqual([1]);
    expect(control.applied.map((r) => r.seq)).toEqual([1]);
    store.save = slowSave;
    release();
    await adding;
    await flushing;
    await outbox.flushOnce();
    expect(control.applied.map((r) => r.seq)).toEqual([1, 2]);
  });

  it('survives failed sends and delivers in order exactly once', async () => {
    const { store, outbox, control, clock } = setup();
    control.failNext('report', 2);
    for (let i = 0; i < 5; i++) await outbox.add({ type: 'instruction-done', instructionId: i + 1, ok: true });
    expect(await outbox.flushOnce()).toBe(false);
    expect(await outbox.flushOnce()).toBe(false);
    expect(store.saved?.outbox).toHaveLength(5);
    expect(await outbox.drain(clock.now() + 1)).toBe(true);
    expect(control.applied.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(control.batches.every((b) => b.length <= 2)).toBe(true);
    expect(store.saved?.outbox).toEqual([]);
  });

  it('drops refused reports and keeps what the server has not applied', async () => {
    const { outbox, control, keeper } = setup();
    control.refuse.add(1);
    await outbox.add({ type: 'payload-started', payloadId: 9 });
    await outbox.add({ type: 'payload-started', payloadId: 10 });
    expect(await outbox.flushOnce()).toBe(true);
    expect(control.applied.map((r) => r.seq)).toEqual([2]);
    expect(keeper.state.outbox).toEqual([]);
  });

  it('retries in the background with backoff until delivered', async () => {
    const { outbox, control, clock } = setup();
    const stop = new AbortController();
    control.failNext('report', 3);
    void outbox.run(stop.signal);
    await outbox.add({ type: 'state', state: 'serving', reason: 'x' });
    for (let i = 0; i < 10 && control.applied.length === 0; i++) await clock.advance(backoffMs(i + 1));
    expect(control.applied).toHaveLength(1);
    stop.abort();
  });

  it('never clears its reports on an applied seq above any it numbered: it stops and says so', async () => {
    const { outbox, control, keeper } = setup();
    const faults: unknown[] = [];
    outbox.onFault = (f) => faults.push(f);
    await outbox.add({ type: 'payload-started', payloadId: 9 });
    control.forgedAppliedSeq = 9_000_000_000_000_000;
    expect(await outbox.flushOnce()).toBe(false);
    expect(faults).toEqual([expect.objectContaining({ appliedSeq: 9_000_000_000_000_000 })]);
    expect(keeper.state.outbox.map((r) => r.seq)).toEqual([1]);
    // and sends nothing more until the pilot has a new identity
    expect(await outbox.flushOnce()).toBe(false);
    expect(control.batches).toHaveLength(1);
    outbox.resume();
    expect(await outbox.flushOnce()).toBe(true);
  });

  it('takes a conflict under its seq or a refused order as a fault too', async () => {
    const { outbox, control } = setup();
    const faults: { why: string }[] = [];
    outbox.onFault = (f) => faults.push(f);
    await outbox.add({ type: 'payload-started', payloadId: 9 });
    control.report = async (reports) => ({ appliedSeq: reports[0]!.seq, refused: [{ seq: reports[0]!.seq, code: 'VMP_REPORT_CONFLICT', message: 'x' }], instructions: [] });
    await outbox.flushOnce();
    expect(faults[0]?.why).toMatch(/another report under seq 1/);
    outbox.resume();
    control.report = async () => {
      throw new VmpilotError('VMP_REPORT_SEQ', 'report seq 1 does not follow the last applied seq 7', { details: { appliedSeq: 7 } });
    };
    await outbox.flushOnce();
    expect(faults[1]).toMatchObject({ appliedSeq: 7 });
    expect(outbox.pending).toHaveLength(1);
  });

  it('sends batches that start at the lowest report, with no gap and under the byte bound', async () => {
    const { outbox, control } = setup();
    const big = 'x'.repeat(60 * 1024);
    const many = new Outbox((outbox as unknown as { keeper: StateKeeper }).keeper, control, new FakeClock(), silentLogger(), () => undefined, 100);
    for (let i = 0; i < 12; i++) await many.add({ type: 'payload-ended', payloadId: i + 1, exitCode: 0, signal: null, outputTail: big });
    expect(await many.drain(Date.now() + 60_000)).toBe(true);
    for (const b of control.batches) {
      expect(Buffer.byteLength(JSON.stringify(b))).toBeLessThan(BATCH_BYTES + 2 * 64 * 1024);
      b.forEach((r, i) => i > 0 && expect(r.seq).toBe(b[i - 1]!.seq + 1));
    }
    expect(control.batches.length).toBeGreaterThan(1);
    expect(control.applied.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });

  it('backs off 1, 2, 4 … 30 s', () => {
    expect([1, 2, 3, 4, 5, 6, 10].map((n) => backoffMs(n))).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  });
});

describe('FileStateStore', () => {
  it('writes atomically and reads back', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'vmp-state-'));
    try {
      const store = new FileStateStore(path.join(dir, 'nested'));
      expect(await store.load()).toBeNull();
      const s = { ...emptyState('http://s'), seq: 4, started: [1, 2] };
      await store.save(s);
      expect(await store.load()).toEqual(s);
      await store.writeShutdownMessage('300 No more work');
      expect((await readdir(path.join(dir, 'nested'))).sort()).toEqual(['shutdown_message', 'state.json']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
