/**
 * The one connection a server keeps to PostgreSQL for wake-ups
 * (api/pg-notifier.ts): a node-postgres Client of its own, not from the
 * store's pool (a pooled connection is handed to others between queries and
 * would stop listening). It LISTENs on the wake channel and sends this
 * server's NOTIFYs. Its application_name, WAKE_APPLICATION_NAME, shows it in
 * pg_stat_activity.
 */
import pg from 'pg';

/** The one channel the servers of a database notify and listen on. */
export const WAKE_CHANNEL = 'vmpilot_wake';

/** The application_name of the wake-up connection (pg_stat_activity). */
export const WAKE_APPLICATION_NAME = 'vmpilot-server wake-ups';

/** An open wake-up connection. */
export interface WakeConnection {
  /** The backend's process id: notifications from it are this server's own. */
  readonly pid: number;
  /** Send one notification on the wake channel. */
  notify(payload: string): Promise<void>;
  /** Resolves once the connection is lost (PostgreSQL restarted, the backend was terminated) or ended. */
  readonly ended: Promise<void>;
  /** Close it (idempotent). */
  end(): Promise<void>;
}

/** Opens a wake-up connection; `heard` gets every notification on the channel, with the sender's pid. */
export type WakeConnect = (heard: (payload: string, fromPid: number) => void) => Promise<WakeConnection>;

/** The real WakeConnect: a Client to `url` that LISTENs on WAKE_CHANNEL before it is returned. */
export function pgWakeConnect(url: string): WakeConnect {
  return async (heard) => {
    const client = new pg.Client({ connectionString: url, application_name: WAKE_APPLICATION_NAME });
    let lost!: () => void;
    const ended = new Promise<void>((resolve) => (lost = resolve));
    // a broken connection emits 'error' (and then 'end'): either means it is gone
    client.on('error', () => lost());
    client.on('end', () => lost());
    client.on('notification', (msg) => {
      if (msg.channel === WAKE_CHANNEL) heard(msg.payload ?? '', msg.processId);
    });
    let closed = false;
    const end = async () => {
      if (closed) return;
      closed = true;
      await client.end().catch(() => {});
      lost();
    };
    try {
      await client.connect();
      await client.query(`LISTEN ${WAKE_CHANNEL}`);
      const pid = Number((await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
      return {
        pid,
        notify: async (payload) => {
          await client.query('SELECT pg_notify($1, $2)', [WAKE_CHANNEL, payload]);
        },
        ended,
        end,
      };
    } catch (err) {
      await end();
      throw err;
    }
  };
}
