/**
 * The PostgreSQL store's reservation designations, as sqlite-reservations.ts:
 * read every row, let the pure decision (queue/reservations.ts
 * `decideDesignation`) choose, and apply its changes, in one transaction.
 * Most answers change nothing and are read without a lock; a decision that
 * changes rows is made again inside a transaction that holds a
 * transaction-scoped advisory lock, on the rows as they are then, so two
 * replicas never decide from the same stale rows.
 */
import type { DesignationRow, Designator } from '../queue/reservations.js';
import type { Pg, PgPool } from './pg-sql.js';
import type { ReservationStore } from './store.js';

/** The advisory lock key designations are changed under ("vmp", then 2). */
export const DESIGNATION_LOCK = 0x766d7002;

function readRows(q: Pg): Promise<DesignationRow[]> {
  return q.all<DesignationRow>('SELECT payload_id AS "payloadId", pilot_id AS "pilotId", seen_at AS "seenAt" FROM designations');
}

/** The reservations part of the PostgreSQL store on `pool`. */
export function pgReservations(pool: PgPool): ReservationStore {
  return {
    async designate(decide: Designator) {
      const first = decide(await readRows(pool));
      if (first.changes.length === 0) return first.waiting;
      return pool.tx(async (q) => {
        await q.run('SELECT pg_advisory_xact_lock(?)', DESIGNATION_LOCK);
        const { waiting, changes } = decide(await readRows(q));
        for (const c of changes) {
          if (c.kind === 'drop') await q.run('DELETE FROM designations WHERE payload_id = ?', c.payloadId);
          else {
            await q.run(
              'INSERT INTO designations (payload_id, pilot_id, seen_at) VALUES (?, ?, ?) ON CONFLICT (payload_id) DO UPDATE SET pilot_id = excluded.pilot_id, seen_at = excluded.seen_at',
              c.payloadId, c.pilotId, c.seenAt,
            );
          }
        }
        return waiting;
      });
    },
  };
}
