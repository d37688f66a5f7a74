/**
 * The SQLite store's reservation designations (migration 9): read every
 * row, let the pure decision (queue/reservations.ts `decideDesignation`)
 * choose, and apply its changes, in one transaction. Most answers change
 * nothing (no payload of more than one core waits, none is designated):
 * those are read without taking the write lock, and only a decision that
 * changes rows is made again inside a write transaction, on the rows as
 * they are then.
 */
import type { DesignationRow, Designator } from '../queue/reservations.js';
import type { Sql } from './sql.js';
import type { ReservationStore } from './store.js';

function readRows(sql: Sql): DesignationRow[] {
  return sql.all<DesignationRow>('SELECT payload_id AS payloadId, pilot_id AS pilotId, seen_at AS seenAt FROM designations');
}

/** The reservations part of the SQLite store on `sql`. */
export function sqliteReservations(sql: Sql): ReservationStore {
  return {
    async designate(decide: Designator) {
      const first = decide(readRows(sql));
      if (first.changes.length === 0) return first.waiting;
      return sql.tx(() => {
        const { waiting, changes } = decide(readRows(sql));
        for (const c of changes) {
          if (c.kind === 'drop') sql.run('DELETE FROM designations WHERE payload_id = ?', c.payloadId);
          else {
            sql.run(
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
