/**
 * JSON schemas of the administrator's request bodies and query strings
 * (submit, batch, kill, instructions, listings, accounting, usage), protocol
 * version 1; the shared parts are in schema-parts.ts.
 */
import { REQUIREMENT_LIMITS } from './requirements.js';
import { LIMITS, cores, id, int, nullable, str } from './schema-parts.js';

const nameList = (maxLength: number) => ({ type: 'array', minItems: 1, maxItems: REQUIREMENT_LIMITS.listEntries, items: str(maxLength, 1) }) as const;

/**
 * SubmitRequest.requirements (docs/requirements.md): types and bounds here;
 * the server then normalises it (`normaliseRequirements`), which checks each
 * value's syntax and names the key, the value and what was expected.
 */
export const requirementsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    gpus: int(0, REQUIREMENT_LIMITS.gpus),
    gpuMemoryMb: int(1, REQUIREMENT_LIMITS.gpuMemoryMb),
    arch: nameList(40),
    platform: nameList(REQUIREMENT_LIMITS.nameLength),
    site: nameList(REQUIREMENT_LIMITS.nameLength),
    notSite: nameList(REQUIREMENT_LIMITS.nameLength),
    tag: nameList(REQUIREMENT_LIMITS.nameLength),
    scratchMb: int(1, REQUIREMENT_LIMITS.scratchMb),
  },
} as const;

const env = {
  type: 'object',
  maxProperties: LIMITS.envEntries,
  propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$', maxLength: 200 },
  additionalProperties: str(LIMITS.argLength),
} as const;

export const coreRequestSchema = {
  type: 'object',
  required: ['min', 'max', 'wholeNode'],
  additionalProperties: false,
  properties: { min: cores, max: cores, wholeNode: { type: 'boolean' } },
} as const;

export const submitSchema = {
  type: 'object',
  required: ['command'],
  additionalProperties: false,
  properties: {
    command: { type: 'array', minItems: 1, maxItems: LIMITS.commandArgs, items: str(LIMITS.argLength) },
    cores: coreRequestSchema,
    memoryMb: nullable(int(1, LIMITS.memoryMb)),
    wallSec: nullable(int(1, LIMITS.wallSec)),
    group: { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_.-]+$' },
    name: str(LIMITS.nameLength),
    priority: int(-1000, 1000),
    env,
    requeue: { type: 'boolean' },
    requirements: requirementsSchema,
  },
} as const;

const reason = str(LIMITS.message);

/** POST /v1/payloads/batch: up to 10000 payloads, queued together or not at all. */
export const submitBatchSchema = {
  type: 'object',
  required: ['payloads'],
  additionalProperties: false,
  properties: { payloads: { type: 'array', minItems: 1, maxItems: 10000, items: submitSchema } },
} as const;

/** POST /v1/payloads/:payloadId/kill. */
export const killSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { reason },
} as const;

/** A day YYYY-MM-DD with a month 01..12 and a day 01..31 (`accounting --from 2025-13-01` is refused). */
const day = { type: 'string', pattern: '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$' } as const;
/** A pilot or payload id in a query string: digits only, short enough to stay an exact integer. */
const idText = { type: 'string', pattern: '^[0-9]{1,15}$' } as const;

/** Query string of GET /v1/accounting. */
export const accountingQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    from: day,
    to: day,
    group: { type: 'string', maxLength: 100 },
    pilot: idText,
    /** `group`: one total per group since the start (what the dashboard shows), and no other filter. */
    by: { type: 'string', enum: ['group'] },
  },
} as const;

/** Query string of GET /v1/usage. */
export const usageQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    minutes: { type: 'string', pattern: '^[1-9][0-9]{0,4}$' },
    stepSec: { type: 'string', pattern: '^[1-9][0-9]{0,5}$' },
  },
} as const;

export const instructionSchema = {
  type: 'object',
  required: ['type'],
  properties: {
    type: { type: 'string', enum: ['drain', 'halt', 'kill-payload', 'set', 'ping'] },
  },
  allOf: [
    {
      if: { properties: { type: { const: 'drain' } } },
      then: { additionalProperties: false, properties: { type: {}, reason } },
    },
    {
      if: { properties: { type: { const: 'halt' } } },
      then: { additionalProperties: false, properties: { type: {}, code: int(100, 999), reason } },
    },
    {
      if: { properties: { type: { const: 'kill-payload' } } },
      then: { required: ['payloadId'], additionalProperties: false, properties: { type: {}, payloadId: id, reason } },
    },
    {
      if: { properties: { type: { const: 'set' } } },
      then: {
        additionalProperties: false,
        minProperties: 2,
        properties: { type: {}, heartbeatIntervalSec: int(1, 86400), idleTimeoutSec: int(0, 30 * 86400) },
      },
    },
    {
      if: { properties: { type: { const: 'ping' } } },
      then: { additionalProperties: false, properties: { type: {} } },
    },
  ],
} as const;

/** `limit` of a listing: digits (the server says when it is out of range: 1 to 500, api/limits.ts PAGE_MAX). */
const pageLimit = { type: 'string', pattern: '^[0-9]{1,9}$' } as const;

/** Query string of GET /v1/payloads: filters, and the page (`limit`, `cursor` from the previous page's Link). */
export const payloadsQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    state: { type: 'string', enum: ['queued', 'assigned', 'running', 'done', 'failed', 'cancelled', 'lost'] },
    group: { type: 'string', maxLength: 100 },
    pilot: idText,
    /** Names containing this text. */
    name: { type: 'string', minLength: 1, maxLength: 200 },
    /** `oldest`: oldest first (the cursor then names ids above). */
    order: { type: 'string', enum: ['newest', 'oldest'] },
    /** A column to sort by (store/list-order.ts; `-` first: largest first); checked by the route, which names the keys. */
    sort: { type: 'string', maxLength: 20 },
    limit: pageLimit,
    cursor: idText,
    /** Skip this many rows (instead of a cursor; at most 1,000,000). */
    offset: { type: 'string', pattern: '^[0-9]{1,7}$' },
  },
} as const;

const pilotStates = 'submitted|booting|running|draining|halting|halted|stalled|error';

/** Query string of GET /v1/pilots: states (comma-separated), and the page. */
export const pilotsQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    state: { type: 'string', maxLength: 200, pattern: `^(${pilotStates})(,(${pilotStates}))*$` },
    /** A column to sort by (store/list-order.ts); checked by the route, which names the keys. */
    sort: { type: 'string', maxLength: 20 },
    limit: pageLimit,
    cursor: idText,
    /** Skip this many rows (instead of a cursor; at most 1,000,000). */
    offset: { type: 'string', pattern: '^[0-9]{1,7}$' },
  },
} as const;

/** An endpoint's name in a path or a body (docs/director.md: a-z, 0-9 and -, up to 24, starting with a letter). */
const endpointName = { type: 'string', minLength: 1, maxLength: 24, pattern: '^[a-z][a-z0-9-]*$' } as const;

/** Body of POST /v1/endpoints/:name/test. */
export const endpointTestSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    shape: { type: 'string', minLength: 1, maxLength: 32, pattern: '^[a-z0-9][a-z0-9._-]*$' },
    timeoutSec: { type: 'integer', minimum: 1, maximum: 86400 },
  },
} as const;

/** Path parameters of the endpoint routes (disable, enable, test): an endpoint name as endpoint-config.ts allows it. */
export const endpointParamsSchema = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: endpointName },
} as const;

/** Path parameters of GET /v1/instances/:instanceId. */
export const instanceParamsSchema = {
  type: 'object',
  required: ['instanceId'],
  additionalProperties: false,
  properties: { instanceId: { type: 'string', pattern: '^[1-9][0-9]{0,14}$' } },
} as const;

/** A `state` filter: one, comma-separated, or repeated; the route names the valid states when one is not. */
const instanceStates = { type: 'string', minLength: 1, maxLength: 200 } as const;

/** Query string of GET /v1/instances: states, endpoint, and the page. */
export const instancesQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    state: { anyOf: [instanceStates, { type: 'array', minItems: 1, maxItems: 7, items: instanceStates }] },
    endpoint: endpointName,
    limit: pageLimit,
    cursor: idText,
    /** Skip this many rows (instead of a cursor; at most 1,000,000). */
    offset: { type: 'string', pattern: '^[0-9]{1,7}$' },
  },
} as const;

/** POST /v1/instances: start instances by hand. */
export const startInstancesSchema = {
  type: 'object',
  required: ['endpoint'],
  additionalProperties: false,
  properties: {
    endpoint: endpointName,
    shape: { type: 'string', minLength: 1, maxLength: 32 },
    count: int(1, 1000),
  },
} as const;

/** POST /v1/instances/stop: drain, then discard these instances. */
export const stopInstancesSchema = {
  type: 'object',
  required: ['ids'],
  additionalProperties: false,
  properties: { ids: { type: 'array', minItems: 1, maxItems: 1000, items: id } },
} as const;
