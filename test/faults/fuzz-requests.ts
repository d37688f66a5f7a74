/**
 * Hostile requests for the fuzz test, as fast-check arbitraries: every route
 * of the protocol (from src/protocol/paths.ts `routes`), with mutated valid
 * bodies, wrong types, huge numbers, deep nesting, unicode, missing and extra
 * fields, wrong or missing tokens, wrong content types, and path parameters
 * that are not ids.
 */
import fc from 'fast-check';
import { routes } from '../../src/protocol/paths.js';
import { heartbeat, matchRequest, registration } from '../unit/server/helpers.js';

/** One request, ready for `inject` or `fetch`. */
export interface HostileRequest {
  route: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string | undefined;
}

/** What the generators need to know about the server's records. */
export interface FuzzTargets {
  /** The routes the app registered, as [method, route pattern]. */
  endpoints: Array<[string, string]>;
  pilotIds: number[];
  payloadIds: number[];
  /** Tokens a caller might hold: admin, registration, pilot credentials. */
  tokens: string[];
}

/** A valid body for each route, the seed the mutations start from. */
export function validBody(route: string, payloadId: number): unknown {
  switch (route) {
    case routes.register:
      return registration({ labels: { site: 'x' } });
    case routes.heartbeat:
      return heartbeat({ payloads: [{ id: payloadId, state: 'running', cores: 1 }] });
    case routes.match:
      return matchRequest();
    case routes.reports:
      return { reports: [{ seq: 1, at: 1, type: 'payload-started', payloadId }, { seq: 2, at: 2, type: 'payload-ended', payloadId, exitCode: 0, signal: null }] };
    case routes.payloads:
      return { command: ['/bin/true'], cores: 1, name: 'n', group: 'g', priority: 1 };
    case routes.payloadsBatch:
      return { payloads: [{ command: ['/bin/true'] }] };
    case routes.instructions:
      return { type: 'halt' };
    default:
      return {};
  }
}

const nasty = fc.oneof(
  fc.constantFrom(1e308, -1e308, 2 ** 64, -(2 ** 63), Number.MAX_SAFE_INTEGER + 2, -0, 0.5, -1, 0, '', '0', 'true', null, true, [], {}),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.jsonValue({ maxDepth: 3 }),
  fc.integer({ min: 2, max: 2000 }).map((n) => 'x'.repeat(n * 50)),
);

/** Every path in a JSON value, as lists of keys. */
function pathsOf(value: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  if (value === null || typeof value !== 'object') return [prefix];
  const keys = Array.isArray(value) ? value.map((_, i) => i) : Object.keys(value);
  return [prefix, ...keys.flatMap((k) => pathsOf((value as Record<string, unknown>)[k], [...prefix, k]))];
}

type Mutation = { pick: number; kind: 'set' | 'delete' | 'add'; value: unknown; key: string };
const mutation = fc.record({
  pick: fc.nat(),
  kind: fc.constantFrom('set', 'delete', 'add') as fc.Arbitrary<Mutation['kind']>,
  value: nasty,
  key: fc.oneof(fc.constantFrom('__proto__', 'constructor', 'id', 'state', 'pilotId', 'extra'), fc.string({ maxLength: 8 })),
});

/** Apply mutations to a deep copy of `seed`. */
function mutate(seed: unknown, ms: Mutation[]): unknown {
  let root: unknown = structuredClone(seed);
  for (const m of ms) {
    // a copy: the constants of `nasty` ([] and {}) are one object each, shared by every request; put into a
    // body as they are, a later mutation of that body changes them for every later request, and one that
    // adds a value into the same object makes a cycle (JSON.stringify and pathsOf then throw)
    const value = structuredClone(m.value);
    const all = pathsOf(root);
    const at = all[m.pick % all.length]!;
    if (at.length === 0) {
      if (m.kind === 'set') root = value;
      else if (m.kind === 'add' && root && typeof root === 'object' && !Array.isArray(root)) Object.defineProperty(root, m.key, { value, enumerable: true, writable: true, configurable: true });
      continue;
    }
    const parent = at.slice(0, -1).reduce<any>((o, k) => o[k], root); // eslint-disable-line @typescript-eslint/no-explicit-any
    const key = at[at.length - 1]!;
    if (m.kind === 'set') parent[key] = value;
    else if (m.kind === 'delete') Array.isArray(parent) ? parent.splice(Number(key), 1) : delete parent[key];
    else if (typeof parent === 'object' && !Array.isArray(parent)) Object.defineProperty(parent, m.key, { value, enumerable: true, writable: true, configurable: true });
  }
  return root;
}

const deep = fc.integer({ min: 1, max: 200_000 }).chain((n) =>
  fc.constantFrom('[', '{"a":').map((open) => (open === '[' ? '['.repeat(n) + ']'.repeat(n) : '{"a":'.repeat(n) + '1' + '}'.repeat(n))),
);
const rawBody = fc.oneof(
  fc.constantFrom('', '{', 'null', '[]', '"x"', '{"reports":', '{"a":1e999999}', '\u0000', '{"command":["a"],"command":["b"]}', '\uFEFF{}'),
  fc.string({ unit: 'binary', maxLength: 200 }),
  deep,
);

const badParam = fc.oneof(
  fc.constantFrom('0', '-1', '1.5', '1e3', '99999999999999999999', '9007199254740993', 'abc', '%F0%9F%92%A9', '..%2F..', '0x10', '%201', '%00', 'NaN', 'null', '01'),
  fc.integer().map(String),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }).map(encodeURIComponent),
);

/** Arbitrary hostile requests against `t`. */
export function hostileRequest(t: FuzzTargets): fc.Arbitrary<HostileRequest> {
  const ids = [...t.pilotIds, ...t.payloadIds];
  return fc
    .record({
      endpoint: fc.constantFrom(...t.endpoints),
      param: fc.oneof(fc.constantFrom(...ids.map(String)), badParam),
      token: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...t.tokens) }, fc.constantFrom('', 'wrong', 'Bearer', 'x'.repeat(5000))),
      scheme: fc.oneof({ weight: 6, arbitrary: fc.constant('Bearer ') }, fc.constantFrom('bearer ', 'Basic ', '', 'Bearer  ')),
      noAuth: fc.nat(9).map((n) => n === 0),
      contentType: fc.constantFrom('application/json', 'application/json', 'application/json; charset=utf-8', undefined, 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16'),
      body: fc.oneof(
        { weight: 5, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 3 }).map((ms) => ({ mutations: ms })) },
        { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => ({ raw: JSON.stringify(v) ?? 'null' })) },
        { weight: 1, arbitrary: rawBody.map((raw) => ({ raw })) },
        { weight: 1, arbitrary: fc.constant({ mutations: [] as Mutation[] }) },
      ),
      query: fc.option(fc.dictionary(fc.constantFrom('state', 'pilot', 'group', 'limit', 'from', 'to', 'since', 'x'), badParam, { maxKeys: 3 })),
    })
    .map((r) => {
      const [method, route] = r.endpoint;
      const payloadId = t.payloadIds[0]!;
      let url = route.replace(/:\w+/g, r.param);
      if (r.query) url += '?' + Object.entries(r.query).map(([k, v]) => `${k}=${v}`).join('&');
      const headers: Record<string, string> = {};
      if (!r.noAuth) headers.authorization = r.scheme + r.token;
      let body: string | undefined;
      if (method !== 'GET') {
        body = 'raw' in r.body ? r.body.raw : JSON.stringify(mutate(validBody(route, payloadId), r.body.mutations)) ?? 'null';
        if (r.contentType) headers['content-type'] = r.contentType;
      }
      return { route, method, url, headers, body };
    });
}
