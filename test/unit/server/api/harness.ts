import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { paths } from '../../../../src/protocol/paths.js';
import type { RegisterReply } from '../../../../src/protocol/index.js';
import { buildApp, type AppOptions } from '../../../../src/server/api/app.js';
import { sha256Hex } from '../../../../src/server/api/auth.js';
import { openSqliteStore, type SqliteStore } from '../../../../src/server/store/sqlite.js';
import { FakeClock } from '../../../../src/shared/clock.js';
import { silentLogger } from '../../../../src/shared/log.js';
import { registration, tempDir } from '../helpers.js';

export const ADMIN = 'admin-secret-token';
export const PILOT = 'pilot-registration-token';

/** An app on a real SQLite file and a fake clock. */
export interface Harness {
  app: FastifyInstance;
  store: SqliteStore;
  clock: FakeClock;
  close: () => Promise<void>;
  register: (hostname?: string) => Promise<RegisterReply>;
  submit: (body: object) => Promise<number>;
  /** Everything the store holds that a user could see. */
  snapshot: () => Promise<unknown>;
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Start a harness (with `options` over the defaults); close it after the test. */
export async function harness(matchWaitMaxSec = 20, options: Partial<AppOptions> = {}): Promise<Harness> {
  const tmp = tempDir();
  const store = openSqliteStore(path.join(tmp.dir, 'server.db'));
  const clock = new FakeClock();
  const app = buildApp({
    store,
    clock,
    log: silentLogger(),
    tokens: { adminHash: sha256Hex(ADMIN), pilotHash: sha256Hex(PILOT) },
    heartbeatIntervalSec: 60,
    matchWaitMaxSec,
    ...options,
  });
  await app.ready();
  return {
    app,
    store,
    clock,
    close: async () => {
      await app.close();
      await store.close();
      tmp.remove();
    },
    register: async (hostname = 'node-1') => {
      const r = await app.inject({ method: 'POST', url: paths.register, headers: bearer(PILOT), payload: registration({ hostname }) });
      if (r.statusCode !== 201) throw new Error(`register: ${r.statusCode} ${r.body}`);
      return r.json<RegisterReply>();
    },
    submit: async (body) => {
      const r = await app.inject({ method: 'POST', url: paths.payloads, headers: bearer(ADMIN), payload: body });
      if (r.statusCode !== 201) throw new Error(`submit: ${r.statusCode} ${r.body}`);
      return r.json<{ id: number }>().id;
    },
    snapshot: async () => {
      const pilots = await store.listPilots({});
      return {
        pilots,
        payloads: await Promise.all((await store.listPayloads({})).map((p) => store.getPayload(p.id))),
        instructions: await Promise.all(pilots.map((p) => store.pendingInstructions(p.id))),
        seqs: await Promise.all(pilots.map((p) => store.appliedSeq(p.id))),
      };
    },
  };
}

/** Resolve once `check` is true, looking again on every turn of the event loop. */
export async function until(check: () => boolean, what: string, turns = 10_000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (check()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`never happened: ${what}`);
}
