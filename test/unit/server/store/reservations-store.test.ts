/**
 * Reservation designations live in the store: two server processes on one
 * database tell only one pilot to reserve cores for a large waiting payload,
 * and a restart keeps them.
 */
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decideDesignation } from '../../../../src/server/queue/reservations.js';
import { openSqliteStore, type SqliteStore } from '../../../../src/server/store/sqlite.js';
import { tempDir } from '../helpers.js';

const eight = { totalCores: 8, memoryMb: 16_000, remainingSec: null };
const STALE = 60_000;

describe('designations in the store', () => {
  let tmp: ReturnType<typeof tempDir>;
  let file: string;
  const opened: SqliteStore[] = [];
  const open = () => {
    const s = openSqliteStore(file);
    opened.push(s);
    return s;
  };
  beforeEach(() => {
    tmp = tempDir();
    file = path.join(tmp.dir, 'server.db');
  });
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
    tmp.remove();
  });

  const ask = async (store: SqliteStore, pilotId: number, now: number) => {
    const candidates = await store.waitingCandidates();
    return store.designate((rows) => decideDesignation(rows, candidates, pilotId, eight, now, STALE));
  };

  it('are shared by two stores on one file, and survive a reopen', async () => {
    const a = open();
    const b = open();
    const id = (await a.submitPayload({ command: ['big'], cores: { min: 4, max: 4, wholeNode: false } }, 0)).id;
    expect(await ask(a, 1, 1000)).toEqual({ cores: 4, waitingSec: 1 });
    // the other process does not designate the same payload to another pilot
    expect(await ask(b, 2, 2000)).toBeNull();
    await a.close();
    const c = open();
    expect(await ask(c, 2, 3000)).toBeNull();
    expect(await ask(c, 1, 3000)).toEqual({ cores: 4, waitingSec: 3 });
    // once the payload leaves the queue, its designation goes
    await c.killPayload(id, 'done with it', 4000);
    expect(await ask(b, 1, 5000)).toBeNull();
    expect(await ask(b, 2, 5000)).toBeNull();
  });

  it('lapse when their pilot stops asking, for another pilot to take', async () => {
    const a = open();
    await a.submitPayload({ command: ['big'], cores: { min: 8, max: 8, wholeNode: false } }, 0);
    expect(await ask(a, 1, 0)).toMatchObject({ cores: 8 });
    expect(await ask(a, 2, STALE - 1)).toBeNull();
    expect(await ask(a, 2, STALE + 1)).toMatchObject({ cores: 8 });
  });
});
