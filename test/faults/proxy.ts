/**
 * A TCP proxy on loopback that stands for the network between agent and
 * server: it forwards 127.0.0.1:port to the target, and on demand drops every
 * open connection, refuses new ones (nothing listens: ECONNREFUSED), or
 * stalls (accepts and never forwards a byte, like a black-holed route). It
 * can also stand for a slow server (`hold`): requests get through, and the
 * answers are held back, connections open, until `release`.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** What the proxy does with connections. */
export type ProxyMode = 'forward' | 'refuse' | 'stall';

/** A running proxy; `close()` it after the test. */
export interface Proxy {
  /** The URL to give the agent instead of the server's. */
  url: string;
  port: number;
  mode: () => ProxyMode;
  /** Connections accepted so far (all modes). */
  accepted: () => number;
  /** Reset every open connection (both sides). */
  dropAll: () => void;
  /** Drop every open connection and switch to `mode`. */
  set: (mode: ProxyMode) => Promise<void>;
  /** From now on hold the server's answers back (connections stay open, requests go through). */
  hold: () => void;
  /** Let every answer held back go, and forward answers again. */
  release: () => void;
  close: () => Promise<void>;
}

/** Start a proxy on 127.0.0.1 (a free port, or `port`) to `target` ("http://host:port"). */
export async function startProxy(target: string, port = 0): Promise<Proxy> {
  const to = new URL(target);
  let mode: ProxyMode = 'forward';
  let accepted = 0;
  const open = new Set<Socket>();
  const hold = (s: Socket) => {
    open.add(s);
    s.on('close', () => open.delete(s));
    s.on('error', () => s.destroy());
  };
  /** Answers flowing back to clients; while `holding`, unpiped and paused (the bytes wait in the socket). */
  const answers = new Map<Socket, Socket>();
  let holding = false;
  const onConnection = (client: Socket) => {
    accepted++;
    hold(client);
    if (mode === 'stall') return; // accepted, never answered, never forwarded
    const upstream = createConnection({ host: to.hostname, port: Number(to.port) });
    hold(upstream);
    client.pipe(upstream);
    answers.set(upstream, client);
    if (holding) upstream.pause();
    else upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => {
      answers.delete(upstream);
      client.destroy();
    });
  };
  let server: Server | null = null;
  const listen = (p: number) =>
    new Promise<number>((resolve, reject) => {
      const s = createServer(onConnection);
      s.once('error', reject);
      s.listen(p, '127.0.0.1', () => {
        server = s;
        resolve((s.address() as { port: number }).port);
      });
    });
  const unlisten = () =>
    new Promise<void>((resolve) => {
      const s = server;
      server = null;
      if (s) s.close(() => resolve());
      else resolve();
    });
  const bound = await listen(port);
  const dropAll = () => {
    for (const s of open) s.resetAndDestroy();
    open.clear();
  };
  return {
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    mode: () => mode,
    accepted: () => accepted,
    dropAll,
    set: async (next) => {
      dropAll();
      if (next === 'refuse' && server) await unlisten();
      if (next !== 'refuse' && !server) await listen(bound);
      mode = next;
    },
    hold: () => {
      holding = true;
      for (const upstream of answers.keys()) {
        upstream.unpipe();
        upstream.pause();
      }
    },
    release: () => {
      holding = false;
      for (const [upstream, client] of answers) upstream.pipe(client);
    },
    close: async () => {
      dropAll();
      await unlisten();
    },
  };
}
