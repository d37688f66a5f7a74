/**
 * A FAKE EC2 endpoint over HTTP, for tests where the ec2 driver runs in
 * another process (the built server): the EC2 Query API as its reference
 * describes it — POST of a form-encoded `Action=…&Version=…` with list
 * members numbered (`InstanceId.1`, `Filter.1.Value.1`,
 * `TagSpecification.1.Tag.1.Key`), answered with an XML document named
 * `<Action>Response` whose lists are `…Set` wrappers of `<item>`s, and
 * errors as `<Response><Errors><Error><Code>…` with status 400.
 * RunInstances, DescribeInstances, TerminateInstances and
 * DescribeSpotPriceHistory; any other action is `InvalidAction`.
 *
 * The EC2 itself is test/fakes/ec2-fake.ts's in-memory one (the same model
 * the mocked SDK client answers from): this file only turns requests into
 * its inputs and its answers into XML. Requests must be signed with
 * Signature Version 4 by the fake's key pair: the signature is recomputed
 * here from the request (canonical request, string to sign, the derived
 * signing key, as the SigV4 reference describes them) and an unknown key
 * or a wrong signature is `AuthFailure`, as EC2 answers them.
 */
import { createHash, createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Ec2Fake, type Ec2FakeOptions } from './ec2-fake.js';

/** The credentials the fake accepts (give them to the server's environment). */
export const EC2_QUERY_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'AKIAFAKEQUERY0000001', AWS_SECRET_ACCESS_KEY: 'fake-query-secret' } as const;

type Tree = { [k: string]: Tree | Tree[] | string };

/** The fake EC2 endpoint. */
export class Ec2QueryFake {
  /** The in-memory EC2 behind it (instances, prices, scripted failures). */
  readonly ec2: Ec2Fake;
  /** Every request's Action, in order. */
  readonly actions: string[] = [];
  url = '';
  private readonly http: Server;

  constructor(o: Ec2FakeOptions = {}) {
    this.ec2 = new Ec2Fake(o);
    this.http = createServer((req, res) => void this.handle(req, res));
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.http.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    await this.ec2.stop();
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await new Promise<string>((resolve) => {
      let b = '';
      req.on('data', (d: Buffer) => (b += d.toString()));
      req.on('end', () => resolve(b));
    });
    const form = new URLSearchParams(body);
    const action = form.get('Action') ?? '';
    this.actions.push(action);
    if (!signedByUs(req, body)) return errorReply(res, 401, 'AuthFailure', 'AWS was not able to validate the provided access credentials');
    const input = nest(form);
    try {
      let answer: unknown;
      switch (action) {
        case 'RunInstances':
          answer = this.ec2.run(runInput(input));
          break;
        case 'DescribeInstances':
          answer = this.ec2.describe({ InstanceIds: strings(input.InstanceId), Filters: filters(input.Filter) });
          break;
        case 'TerminateInstances':
          answer = await this.ec2.terminate(strings(input.InstanceId) ?? []);
          break;
        case 'DescribeSpotPriceHistory':
          answer = this.ec2.spotPriceHistory({ InstanceTypes: strings(input.InstanceType), Filters: filters(input.Filter), ...(typeof input.NextToken === 'string' ? { NextToken: input.NextToken } : {}) });
          break;
        default:
          return errorReply(res, 400, 'InvalidAction', `The action ${action} is not valid for this web service.`);
      }
      const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>fake-request</requestId>${toXml(answer)}</${action}Response>`;
      res.statusCode = 200;
      res.setHeader('content-type', 'text/xml;charset=UTF-8');
      res.end(xml);
    } catch (err) {
      const e = err as { name?: string; message?: string };
      errorReply(res, 400, e.name ?? 'InternalError', e.message ?? String(err));
    }
  }
}

const sha256 = (x: string) => createHash('sha256').update(x, 'utf8').digest('hex');
const hmac = (key: string | Buffer, x: string) => createHmac('sha256', key).update(x, 'utf8').digest();

/** True when the request's SigV4 Authorization is the fake key pair's signature of this request (POST to /, no query). */
function signedByUs(req: IncomingMessage, body: string): boolean {
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/ec2\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(String(req.headers.authorization ?? ''));
  if (!m || m[1] !== EC2_QUERY_CREDENTIALS.AWS_ACCESS_KEY_ID) return false;
  const [, , day, region, signedHeaders, signature] = m as unknown as [string, string, string, string, string, string];
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  if (!amzDate.startsWith(day) || !signedHeaders.split(';').includes('host')) return false;
  const u = new URL(req.url ?? '/', 'http://x');
  const query = [...u.searchParams].map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).sort().join('&');
  const headers = signedHeaders.split(';').map((h) => `${h}:${String(req.headers[h] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const canonical = [req.method ?? 'POST', u.pathname, query, headers, signedHeaders, sha256(body)].join('\n');
  const scope = `${day}/${region}/ec2/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${EC2_QUERY_CREDENTIALS.AWS_SECRET_ACCESS_KEY}`, day), region), 'ec2'), 'aws4_request');
  return createHmac('sha256', key).update(toSign, 'utf8').digest('hex') === signature;
}

/** `A.1.B.2.C=v` → { A: [{ B: [, { C: v }] }] } (1-based, holes dropped). */
function nest(form: URLSearchParams): Tree {
  const root: Tree = {};
  for (const [k, v] of form) {
    const parts = k.split('.');
    let at: Tree = root;
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      const last = i === parts.length - 1;
      const next = parts[i + 1];
      if (last) {
        at[p] = v;
      } else if (next !== undefined && /^\d+$/.test(next)) {
        const list = (at[p] ??= []) as Tree[];
        const n = Number(next) - 1;
        if (i + 1 === parts.length - 1) {
          (list as unknown as string[])[n] = v;
          break;
        }
        at = list[n] ??= {};
        i++;
      } else {
        at = (at[p] ??= {}) as Tree;
      }
    }
  }
  return root;
}

function strings(v: Tree | Tree[] | string | undefined): string[] | undefined {
  return Array.isArray(v) ? (v as unknown as string[]).filter((x) => x !== undefined) : undefined;
}

function filters(v: Tree | Tree[] | string | undefined): { Name: string; Values: string[] }[] | undefined {
  if (!Array.isArray(v)) return undefined;
  return v.filter(Boolean).map((f) => ({ Name: String(f.Name), Values: strings(f.Value) ?? [] }));
}

function runInput(t: Tree): Parameters<Ec2Fake['run']>[0] {
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const sub = (v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Tree) : undefined);
  const market = sub(t.InstanceMarketOptions);
  const spot = sub(market?.SpotOptions);
  const tagSpecs = Array.isArray(t.TagSpecification) ? t.TagSpecification.filter(Boolean) : [];
  const input: Record<string, unknown> = {
    ClientToken: str(t.ClientToken),
    ImageId: str(t.ImageId),
    InstanceType: str(t.InstanceType),
    MinCount: Number(t.MinCount),
    MaxCount: Number(t.MaxCount),
    UserData: str(t.UserData),
    InstanceInitiatedShutdownBehavior: str(t.InstanceInitiatedShutdownBehavior),
    TagSpecifications: tagSpecs.map((s) => ({ ResourceType: str(s.ResourceType), Tags: (Array.isArray(s.Tag) ? s.Tag.filter(Boolean) : []).map((g) => ({ Key: str(g.Key), Value: str(g.Value) })) })),
    SubnetId: str(t.SubnetId),
    Placement: sub(t.Placement) ? { AvailabilityZone: str(sub(t.Placement)!.AvailabilityZone) } : undefined,
    SecurityGroupIds: strings(t.SecurityGroupId),
    KeyName: str(t.KeyName),
    InstanceMarketOptions: market ? { MarketType: str(market.MarketType), SpotOptions: spot ? { MaxPrice: str(spot.MaxPrice), SpotInstanceType: str(spot.SpotInstanceType), InstanceInterruptionBehavior: str(spot.InstanceInterruptionBehavior) } : undefined } : undefined,
  };
  for (const k of Object.keys(input)) if (input[k] === undefined) delete input[k];
  return input as unknown as Parameters<Ec2Fake['run']>[0];
}

/** The element names the Query API gives members whose name is not the SDK's in lower camel case. */
const XML_NAMES: Record<string, string> = {
  Instances: 'instancesSet',
  TerminatingInstances: 'instancesSet',
  Reservations: 'reservationSet',
  Tags: 'tagSet',
  SpotPriceHistory: 'spotPriceHistorySet',
  State: 'instanceState',
};

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** An SDK-shaped answer as Query-API XML. */
function toXml(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (v instanceof Date) return v.toISOString();
  if (typeof v !== 'object') return esc(String(v));
  let out = '';
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (x === undefined || x === null || x === '') continue;
    const name = XML_NAMES[k] ?? k[0]!.toLowerCase() + k.slice(1);
    out += Array.isArray(x) ? `<${name}>${x.map((i) => `<item>${toXml(i)}</item>`).join('')}</${name}>` : `<${name}>${toXml(x)}</${name}>`;
  }
  return out;
}

function errorReply(res: ServerResponse, status: number, code: string, message: string): void {
  res.statusCode = status;
  res.setHeader('content-type', 'text/xml;charset=UTF-8');
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${esc(code)}</Code><Message>${esc(message)}</Message></Error></Errors><RequestID>fake-request</RequestID></Response>`);
}
