/**
 * A FAKE EC2 instance metadata service (IMDSv2) on 127.0.0.1 for the
 * agent's spot notice: `PUT /latest/api/token` with the
 * X-aws-ec2-metadata-token-ttl-seconds header (1 to 21600) answers a session
 * token; `GET /latest/meta-data/spot/instance-action` with that token in
 * X-aws-ec2-metadata-token answers 404 until a test sets a notice, then the
 * notice as JSON (`{"action": "terminate", "time": "…Z"}`), as the EC2 user
 * guide describes it. A GET without a valid token is 401, as IMDSv2 with
 * tokens required answers; a token expires after its TTL.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The fake metadata service. */
export class ImdsFake {
  url = '';
  /** The notice to serve (null: none yet). */
  notice: { action: string; time: Date } | null = null;
  readonly tokens = new Map<string, number>();
  tokenPuts = 0;
  noticeGets = 0;
  refusedGets = 0;
  private readonly http: Server;

  constructor() {
    this.http = createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      if (req.method === 'PUT' && u.pathname === '/latest/api/token') {
        const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds']);
        if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21600) {
          res.statusCode = 400;
          return res.end();
        }
        const token = `AQAEA${randomUUID().replace(/-/g, '')}`;
        this.tokens.set(token, Date.now() + ttl * 1000);
        this.tokenPuts++;
        res.setHeader('x-aws-ec2-metadata-token-ttl-seconds', String(ttl));
        return res.end(token);
      }
      if (req.method === 'GET' && u.pathname.startsWith('/latest/meta-data/')) {
        const token = req.headers['x-aws-ec2-metadata-token'];
        const until = typeof token === 'string' ? this.tokens.get(token) : undefined;
        if (until === undefined || until < Date.now()) {
          this.refusedGets++;
          res.statusCode = 401;
          return res.end();
        }
        if (u.pathname === '/latest/meta-data/spot/instance-action') {
          this.noticeGets++;
          if (!this.notice) {
            res.statusCode = 404;
            res.setHeader('content-type', 'text/html');
            return res.end('<?xml version="1.0" encoding="iso-8859-1"?>\n<html><head><title>404 - Not Found</title></head><body><h1>404 - Not Found</h1></body></html>\n');
          }
          res.setHeader('content-type', 'text/plain');
          return res.end(JSON.stringify({ action: this.notice.action, time: this.notice.time.toISOString().replace(/\.\d+Z$/, 'Z') }));
        }
      }
      res.statusCode = 404;
      res.end();
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.http.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }
}
