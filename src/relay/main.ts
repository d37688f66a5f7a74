/**
 * `vmpilot relay`: on a login node, carry the pilot protocol between the
 * compute nodes behind it and the server (docs/hpc.md). It listens for
 * agents over HTTP (`--listen`), moves mailboxes on a shared filesystem
 * (`--spool`), or both; it reaches the server over a few kept-alive
 * connections with its own relay token, and keeps the agent files and
 * bootstrap artifacts it passes on in a cache.
 *
 * stdout contract: `vmpilot relay listening on http(s)://HOST:PORT` (the real
 * port when 0 was asked) and/or `vmpilot relay moving mailboxes in DIR`,
 * once each, when it is ready. Logs go to stderr. SIGTERM or SIGINT stops
 * it: it stops listening, drops the long polls it holds (agents ask again),
 * lets go of the spool, and returns (exit status 0).
 */
import type { AddressInfo } from 'node:net';
import { systemClock } from '../shared/clock.js';
import { VmpilotError, describeError } from '../shared/errors.js';
import { createLogger } from '../shared/log.js';
import { AgentFiles } from './agent-files.js';
import { Artifacts } from './artifacts.js';
import { ContentCache } from './cache.js';
import { PilotForwarder } from './forward.js';
import { httpRelay } from './http-relay.js';
import { relayOptions } from './options.js';
import { Outputs } from './outputs.js';
import { Spool } from './spool.js';
import { Upstream } from './upstream.js';

/** Run the relay until SIGTERM or SIGINT. */
export async function runRelay(flags: Record<string, unknown>, write = (line: string) => void process.stdout.write(`${line}\n`)): Promise<void> {
  const o = relayOptions(flags);
  const log = createLogger({ level: o.logLevel, base: { role: 'relay' } });
  const upstream = new Upstream({ server: o.server.href, ca: o.ca, relayToken: o.relayToken, callSockets: o.callSockets, pollSockets: o.pollSockets });
  const forwarder = new PilotForwarder(upstream, log);
  const cache = new ContentCache(o.cacheDir, log.child({ part: 'cache' }), o.cacheMaxBytes);
  const stop = new AbortController();
  const stopped = untilSignal(stop);
  const server = o.listen
    ? httpRelay({
        forwarder,
        agentFiles: new AgentFiles(upstream, cache, log),
        artifacts: new Artifacts(cache, o.artifactsFrom, o.ca, log),
        outputs: o.outputs ? new Outputs(o.outputs, o.ca, log) : null,
        log,
        ...(o.tls ? { tls: o.tls } : {}),
      })
    : null;
  const spool = o.spool ? new Spool({ dir: o.spool, forwarder, clock: systemClock, log, pollMs: o.pollMs, pollMaxMs: o.pollMaxMs }) : null;
  let moving: Promise<void> | null = null;
  try {
    if (spool) {
      await spool.start();
      moving = spool.run(stop.signal);
      write(`vmpilot relay moving mailboxes in ${o.spool}`);
    }
    if (server && o.listen) {
      const { host, port } = o.listen;
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err: NodeJS.ErrnoException) =>
          reject(new VmpilotError('VMP_LISTEN', `cannot listen on ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'the address is already in use' : err.code === 'EADDRNOTAVAIL' ? 'no such address on this host' : describeError(err)}`, { cause: err })),
        );
        server.listen(port, host, resolve);
      });
      const real = (server.address() as AddressInfo).port;
      write(`vmpilot relay listening on ${o.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${real}`);
    }
    log.info({ server: o.server.origin, listen: o.listen, tls: o.tls !== null, cacheMaxMb: o.cacheMaxBytes / 1048576, spool: o.spool, cacheDir: o.cacheDir, relayToken: o.relayToken !== null, outputs: o.outputs?.origin ?? null }, 'relay started');
    const signal = await stopped;
    log.info({ signal }, 'stopping');
  } finally {
    stop.abort();
    if (server?.listening) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    await moving;
    upstream.close();
  }
  log.info('stopped');
}

function untilSignal(stop: AbortController): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      resolve(signal);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
    stop.signal.addEventListener('abort', () => on('SIGTERM'), { once: true });
  });
}
