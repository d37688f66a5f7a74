/**
 * Start the real relay (`dist/vmpilot.cjs relay`) as a child process and
 * wait until it says it is ready; a PUT sink standing in for a storage
 * element that takes `$JOBOUTPUTS` uploads.
 */
import { spawn, type SpawnOptions } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { AGENT, kill, type Proc } from '../harness.js';

/** A running relay: its HTTP URL when it listens, and the process. */
export interface Relay extends Proc {
  url: string | null;
  stop: () => Promise<unknown>;
}

/**
 * Start `vmpilot relay ARGS` (the bundle `agent`, default dist/'s; `uid` and
 * `gid` in `options` run it as that account); resolves once it printed every
 * ready line it will print.
 */
export async function startRelay(args: string[], options: SpawnOptions & { agent?: string } = {}, spawnIn?: (cmd: string, args: string[], o: SpawnOptions) => ReturnType<typeof spawn>): Promise<Relay> {
  const { agent = AGENT, ...spawnOptions } = options;
  const argv = [agent, 'relay', ...args];
  const child = (spawnIn ?? spawn)(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...spawnOptions });
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const wantListen = args.includes('--listen');
  const wantSpool = args.includes('--spool');
  const url = await new Promise<string | null>((resolve, reject) => {
    let listening: string | null = null;
    let moving = false;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      out += `${line}\n`;
      const m = /^vmpilot relay listening on (https?:\/\/\S+)$/.exec(line);
      if (m) listening = m[1]!;
      if (line.startsWith('vmpilot relay moving mailboxes in ')) moving = true;
      if ((!wantListen || listening) && (!wantSpool || moving)) resolve(listening);
    });
    void exited.then((e) => reject(new Error(`relay exited (${e.code ?? e.signal}) before it was ready:\n${err}`)));
  });
  const proc: Proc = { child, stderr: () => err, stdout: () => out, exited };
  return {
    ...proc,
    url,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Kill a relay with SIGKILL (by its pid). */
export function killRelay(relay: Relay): Promise<unknown> {
  kill(relay.child);
  return relay.exited;
}

/** An HTTP server on 127.0.0.1 that keeps every PUT: path → body, with the headers seen. */
export async function putSink(): Promise<{ url: string; files: Map<string, string>; close: () => Promise<void>; server: Server }> {
  const files = new Map<string, string>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      if (req.method !== 'PUT') return void res.writeHead(405).end();
      files.set(req.url ?? '', Buffer.concat(chunks).toString('utf8'));
      res.writeHead(201).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, files, server, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
