import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_REDIRECTS, download } from '../../../../src/agent/bootstrap/download.js';
import type { Clock } from '../../../../src/shared/clock.js';

/** Sleeps return at once: retries are counted, not waited for. */
const instant: Clock = { now: () => 0, sleep: async () => undefined };
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

/** Serve `body` (from the Range start when asked, 206 with Content-Range). */
function sendBody(body: Buffer, req: IncomingMessage, res: ServerResponse, opts: { stall?: boolean; ignoreRange?: boolean; claimStart?: number } = {}): void {
  const m = opts.ignoreRange ? null : /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const start = m ? Number(m[1]) : 0;
  const part = body.subarray(start);
  const claimed = opts.claimStart ?? start;
  res.writeHead(m ? 206 : 200, { 'content-length': part.length, ...(m ? { 'content-range': `bytes ${claimed}-${body.length - 1}/${body.length}` } : {}) });
  if (opts.stall) res.write(part.subarray(0, part.length >> 1)); // half the body, then silence
  else res.end(part);
}

/** A response stalled half way, torn down (socket destroyed) once the client has written some of it: a cut connection. */
class Cut {
  private res: ServerResponse | null = null;
  /** Stall this response (half the body sent) until `progress` is called. */
  hold(body: Buffer, req: IncomingMessage, res: ServerResponse): void {
    this.res = res;
    sendBody(body, req, res, { stall: true });
  }
  /** A progress reporter that cuts the held connection at its first call, when bytes are on disk. */
  readonly progress = () => {
    this.res?.socket?.destroy();
    this.res = null;
  };
}

describe('download over node:http, against servers on 127.0.0.1', () => {
  let dir: string;
  let servers: Server[];
  let log: { path: string; range: string | undefined }[];

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'vmpilot-download-'));
    servers = [];
    log = [];
  });
  afterEach(async () => {
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  /** Start a server whose requests (path, Range) are logged; its base URL. */
  async function serve(handler: Handler, make: () => Server = () => createHttpServer()): Promise<string> {
    const s = make();
    s.on('request', (req: IncomingMessage, res: ServerResponse) => {
      log.push({ path: req.url ?? '', range: req.headers.range });
      handler(req, res, log.length);
    });
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const secure = 'setSecureContext' in s;
    return `${secure ? 'https' : 'http'}://127.0.0.1:${(s.address() as AddressInfo).port}`;
  }

  const bodyOf = (size: number) => {
    const b = Buffer.alloc(size);
    for (let i = 0; i < size; i++) b[i] = (i * 31 + (i >> 8)) % 256;
    return b;
  };

  it('follows absolute and relative redirects, to another server too', async () => {
    const body = bodyOf(64 * 1024);
    const mirror = await serve((req, res) => (req.url === '/files/tool.tgz' ? sendBody(body, req, res) : res.writeHead(404).end()));
    const base = await serve((req, res) => {
      if (req.url === '/get/tool') return void res.writeHead(302, { location: '/dl/v1/tool' }).end('moved');
      if (req.url === '/dl/v1/tool') return void res.writeHead(301, { location: '../../mirror?f=tool' }).end();
      if (req.url === '/mirror?f=tool') return void res.writeHead(307, { location: `${mirror}/files/tool.tgz` }).end();
      res.writeHead(404).end();
    });
    const part = path.join(dir, 'tool.part');
    await download(`${base}/get/tool`, part, sha(body), { clock: instant, attempts: 1 });
    expect(readFileSync(part).equals(body)).toBe(true);
    expect(log.map((l) => l.path)).toEqual(['/get/tool', '/dl/v1/tool', '/mirror?f=tool', '/files/tool.tgz']);
  });

  it(`follows at most ${MAX_REDIRECTS} redirects; one more fails at once, naming the limit`, async () => {
    const body = bodyOf(1000);
    // /hop/N redirects to /hop/N-1 (relative), /hop/0 answers
    const base = await serve((req, res) => {
      const n = Number(/^\/hop\/(\d+)$/.exec(req.url ?? '')?.[1]);
      if (n > 0) return void res.writeHead(302, { location: `${n - 1}` }).end();
      sendBody(body, req, res);
    });
    await download(`${base}/hop/${MAX_REDIRECTS}`, path.join(dir, 'ok.part'), sha(body), { clock: instant, attempts: 3 });
    expect(log).toHaveLength(MAX_REDIRECTS + 1);
    log.length = 0;
    await expect(download(`${base}/hop/${MAX_REDIRECTS + 1}`, path.join(dir, 'far.part'), sha(body), { clock: instant, attempts: 3 })).rejects.toThrow(
      new RegExp(`after 1 attempt: GET ${base}/hop/6: more than 5 redirects \\(the last to ${base}/hop/0\\)`),
    );
    expect(log).toHaveLength(MAX_REDIRECTS + 1); // not retried: a loop stays a loop
  });

  it('refuses a redirect to a file: URL or without a Location, at once', async () => {
    const base = await serve((req, res) => {
      if (req.url === '/to-file') return void res.writeHead(302, { location: 'file:///etc/passwd' }).end();
      res.writeHead(303).end();
    });
    await expect(download(`${base}/to-file`, path.join(dir, 'a'), 'a'.repeat(64), { clock: instant, attempts: 3 })).rejects.toThrow(
      `after 1 attempt: ${base}/to-file redirected to file:///etc/passwd: only http and https are followed`,
    );
    await expect(download(`${base}/nowhere`, path.join(dir, 'b'), 'a'.repeat(64), { clock: instant, attempts: 3 })).rejects.toThrow(`after 1 attempt: GET ${base}/nowhere: HTTP 303 without a Location`);
    expect(log).toHaveLength(2);
  });

  it('resumes with a 206 after the connection is torn down mid-body behind a redirect, with progress to the full size', async () => {
    const body = bodyOf(512 * 1024);
    const cut = new Cut();
    const base = await serve((req, res, n) => {
      if (req.url === '/latest') return void res.writeHead(302, { location: '/v2/blob' }).end();
      if (n === 2) cut.hold(body, req, res);
      else sendBody(body, req, res);
    });
    const seen: [number, number | null][] = [];
    const part = path.join(dir, 'blob.part');
    const progress = (done: number, total: number | null) => {
      seen.push([done, total]);
      cut.progress();
    };
    await download(`${base}/latest`, part, sha(body), { clock: instant, attempts: 3, progress });
    expect(readFileSync(part).equals(body)).toBe(true);
    // 1st attempt: redirect, cut; 2nd: redirect, ranged GET answered 206 from where the part ended
    expect(log.map((l) => l.path)).toEqual(['/latest', '/v2/blob', '/latest', '/v2/blob']);
    expect(log[2]!.range).toMatch(/^bytes=\d+-$/);
    expect(log[3]!.range).toBe(log[2]!.range);
    const from = Number(/\d+/.exec(log[3]!.range!)![0]);
    expect(from).toBeGreaterThan(0);
    expect(from).toBeLessThan(body.length);
    expect(seen.at(-1)).toEqual([body.length, body.length]);
    expect(seen.filter(([done]) => done > from).every(([, total]) => total === body.length)).toBe(true);
  });

  it('a connection that goes silent fails the attempt after the idle timeout; the next resumes', async () => {
    const body = bodyOf(128 * 1024);
    const base = await serve((req, res, n) => sendBody(body, req, res, { stall: n === 1 }));
    const part = path.join(dir, 'slow.part');
    await download(`${base}/slow`, part, sha(body), { clock: instant, attempts: 2, idleTimeoutMs: 300 });
    expect(readFileSync(part).equals(body)).toBe(true);
    expect(log[1]!.range).toMatch(/^bytes=[1-9]\d*-$/);
  });

  it('a server that ignores Range (200) or answers from the wrong byte: the part starts over, never mixed', async () => {
    const body = bodyOf(100_000);
    let mode: 'ignore' | 'wrong' = 'ignore';
    const cut = new Cut();
    const base = await serve((req, res, n) => {
      if (n === 1) return cut.hold(body, req, res); // each phase's first request is cut
      if (mode === 'ignore') return sendBody(body, req, res, { ignoreRange: true });
      // claims to start at 0 but sends the rest: must not be appended
      if (req.headers.range) return sendBody(body, req, res, { claimStart: 0 });
      sendBody(body, req, res);
    });
    const a = path.join(dir, 'a.part');
    await download(`${base}/a`, a, sha(body), { clock: instant, attempts: 2, progress: cut.progress });
    expect(readFileSync(a).equals(body)).toBe(true);
    expect(log.map((l) => l.range === undefined)).toEqual([true, false]);
    mode = 'wrong';
    log.length = 0;
    const b = path.join(dir, 'b.part');
    await download(`${base}/b`, b, sha(body), { clock: instant, attempts: 3, progress: cut.progress });
    expect(readFileSync(b).equals(body)).toBe(true);
    expect(log.map((l) => l.range === undefined)).toEqual([true, false, true]);
  });

  it('an error status: retried when it may pass (503, 429), given up at once when it will not (404, 403), naming the status', async () => {
    let status = 503;
    const base = await serve((_req, res) => res.writeHead(status, { 'content-type': 'text/plain' }).end('no'));
    await expect(download(`${base}/x`, path.join(dir, 'x'), 'a'.repeat(64), { clock: instant, attempts: 3 })).rejects.toThrow(`cannot download ${base}/x after 3 attempts: GET ${base}/x: HTTP 503`);
    expect(log).toHaveLength(3);
    for (const [s, tries] of [[429, 2], [404, 1], [403, 1]] as const) {
      status = s;
      log.length = 0;
      const err = await download(`${base}/x`, path.join(dir, 'x'), 'a'.repeat(64), { clock: instant, attempts: 2 }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'VMP_UNREACHABLE', details: { status: s } });
      expect(String(err)).toContain(`HTTP ${s}`);
      expect(log).toHaveLength(tries);
    }
  });

  it('a refused connection is retried with backoff and then named', async () => {
    const base = await serve((_req, res) => res.end());
    const port = new URL(base).port;
    servers[0]!.close();
    servers.length = 0;
    const pauses: number[] = [];
    const clock: Clock = { now: () => 0, sleep: async (ms) => void pauses.push(ms) };
    await expect(download(`http://127.0.0.1:${port}/x`, path.join(dir, 'x'), 'a'.repeat(64), { clock, attempts: 3, backoffMs: 10 })).rejects.toThrow(
      `after 3 attempts: GET http://127.0.0.1:${port}/x: connect ECONNREFUSED 127.0.0.1:${port}`,
    );
    expect(pauses).toEqual([10, 20]);
  });

  it('https: trusts a private CA when given one (as the control plane does with --ca-file), refuses the certificate otherwise', async () => {
    const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe', cwd: dir });
    ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=vmpilot download test CA');
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1');
    writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
    ssl('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '2', '-extfile', 'ext.cnf');
    const body = bodyOf(10_000);
    const read = (f: string) => readFileSync(path.join(dir, f));
    const base = await serve(
      (req, res) => (req.url === '/r' ? res.writeHead(302, { location: '/f' }).end() : sendBody(body, req, res)),
      () => createHttpsServer({ cert: read('srv.pem'), key: read('srv.key') }),
    );
    expect(base).toMatch(/^https:/);
    await expect(download(`${base}/r`, path.join(dir, 'untrusted'), sha(body), { clock: instant, attempts: 1 })).rejects.toThrow(/certificate/i);
    const part = path.join(dir, 'trusted');
    await download(`${base}/r`, part, sha(body), { clock: instant, attempts: 1, ca: read('ca.pem') });
    expect(readFileSync(part).equals(body)).toBe(true);
  });

  it('an abort stops a download that is waiting on a silent server, without retrying', async () => {
    const body = bodyOf(50_000);
    const base = await serve((req, res) => sendBody(body, req, res, { stall: true }));
    const ac = new AbortController();
    const p = download(`${base}/x`, path.join(dir, 'x'), sha(body), { clock: instant, attempts: 5, signal: ac.signal, progress: () => ac.abort() });
    await expect(p).rejects.toThrow(/abort/i);
    expect(log).toHaveLength(1);
  });
});
