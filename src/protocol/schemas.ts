/**
 * JSON schemas (draft-07, as fastify's Ajv takes them) for every request body
 * of protocol version 1. The server validates each body against its schema
 * before it touches anything: a body that does not fit gets 400 with a message
 * naming the field, and changes nothing. Every object is closed
 * (`additionalProperties: false`) so a misspelt field is an error, not a no-op.
 */
import { ISOLATION_MODES } from './messages.js';
import { REQUIREMENT_LIMITS } from './requirements.js';

const int = (minimum: number, maximum: number) => ({ type: 'integer', minimum, maximum }) as const;
const str = (maxLength: number, minLength = 0) => ({ type: 'string', minLength, maxLength }) as const;
const nullable = <T extends object>(s: T) => ({ anyOf: [s, { type: 'null' }] }) as const;

/** Upper bounds that keep one request small and a bad value obvious. */
export const LIMITS = {
  cores: 4096,
  memoryMb: 64 * 1024 * 1024,
  wallSec: 366 * 24 * 3600,
  commandArgs: 1024,
  argLength: 32 * 1024,
  nameLength: 200,
  envEntries: 256,
  reportsPerRequest: 1000,
  payloadsPerHeartbeat: 4096,
  outputTail: 64 * 1024,
  message: 4096,
  waitSec: 60,
} as const;

const epochMs = int(0, 8.64e15);
const id = int(1, Number.MAX_SAFE_INTEGER);
const cores = int(1, LIMITS.cores);
const coreCount = int(0, LIMITS.cores);
const lifecycle = { type: 'string', enum: ['booting', 'serving', 'draining', 'halting', 'halted'] } as const;
const labels = {
  type: 'object',
  maxProperties: 64,
  propertyNames: { maxLength: 100 },
  additionalProperties: str(1000),
} as const;
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

/** RegisterRequest.capabilities and HeartbeatRequest.capabilities: what a node is and has. */
export const capabilitiesSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    arch: nullable(str(40, 1)),
    cpuLevel: nullable(int(1, 4)),
    platform: nullable(str(REQUIREMENT_LIMITS.nameLength, 1)),
    site: nullable(str(REQUIREMENT_LIMITS.nameLength, 1)),
    tags: { type: 'array', maxItems: 64, items: str(REQUIREMENT_LIMITS.nameLength, 1) },
    gpus: {
      type: 'array',
      maxItems: REQUIREMENT_LIMITS.gpus,
      items: {
        type: 'object',
        required: ['id'],
        additionalProperties: false,
        properties: { id: str(200, 1), model: nullable(str(200)), memoryMb: nullable(int(0, REQUIREMENT_LIMITS.gpuMemoryMb)) },
      },
    },
    scratchMb: nullable(int(0, Number.MAX_SAFE_INTEGER)),
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

export const registerSchema = {
  type: 'object',
  required: ['hostname', 'version', 'cores', 'memoryMb'],
  additionalProperties: false,
  properties: {
    hostname: str(255, 1),
    version: str(64, 1),
    cores,
    memoryMb: int(0, LIMITS.memoryMb),
    diskMb: int(0, Number.MAX_SAFE_INTEGER),
    externalId: str(255),
    deadline: nullable(epochMs),
    labels,
    isolation: { type: 'string', enum: ISOLATION_MODES },
    capabilities: capabilitiesSchema,
  },
} as const;

export const heartbeatSchema = {
  type: 'object',
  required: ['at', 'state', 'version', 'uptimeSec', 'cores', 'memoryMb', 'payloads'],
  additionalProperties: false,
  properties: {
    at: epochMs,
    state: lifecycle,
    version: str(64, 1),
    uptimeSec: { type: 'number', minimum: 0 },
    cores: {
      type: 'object',
      required: ['total', 'used', 'free'],
      additionalProperties: false,
      properties: { total: cores, used: coreCount, free: coreCount },
    },
    memoryMb: {
      type: 'object',
      required: ['total', 'used'],
      additionalProperties: false,
      properties: { total: int(0, LIMITS.memoryMb), used: int(0, LIMITS.memoryMb) },
    },
    load: { type: 'array', minItems: 3, maxItems: 3, items: { type: 'number', minimum: 0 } },
    cpuUse: { type: 'number', minimum: 0 },
    diskFreeMb: { type: 'number', minimum: 0 },
    payloads: {
      type: 'array',
      maxItems: LIMITS.payloadsPerHeartbeat,
      items: {
        type: 'object',
        required: ['id', 'state', 'cores'],
        additionalProperties: false,
        properties: {
          id,
          state: { type: 'string', enum: ['starting', 'running', 'stopping'] },
          cores,
          cpuSec: { type: 'number', minimum: 0 },
          rssMb: { type: 'number', minimum: 0 },
        },
      },
    },
    deadline: nullable(epochMs),
    features: {
      type: 'object',
      maxProperties: 64,
      propertyNames: { maxLength: 100 },
      additionalProperties: { anyOf: [str(1000), { type: 'number' }] },
    },
    capabilities: capabilitiesSchema,
  },
} as const;

export const matchSchema = {
  type: 'object',
  required: ['freeCores', 'totalCores', 'freeMemoryMb', 'remainingSec', 'holding', 'waitSec'],
  additionalProperties: false,
  properties: {
    freeCores: coreCount,
    totalCores: cores,
    freeMemoryMb: int(0, LIMITS.memoryMb),
    remainingSec: nullable({ type: 'number', minimum: 0 }),
    holding: { type: 'array', maxItems: LIMITS.cores, items: id },
    waitSec: { type: 'number', minimum: 0, maximum: LIMITS.waitSec },
    minCores: coreCount,
    backfill: {
      type: 'object',
      required: ['wallSec', 'spareCores'],
      additionalProperties: false,
      properties: { wallSec: int(0, LIMITS.wallSec), spareCores: coreCount },
    },
    freeGpus: { type: 'array', maxItems: REQUIREMENT_LIMITS.gpus, items: str(200, 1) },
    freeScratchMb: int(0, Number.MAX_SAFE_INTEGER),
  },
} as const;

const reportBase = { seq: id, at: epochMs } as const;

const reportSchemas = [
  {
    type: 'object',
    required: ['seq', 'at', 'type', 'payloadId'],
    additionalProperties: false,
    properties: { ...reportBase, type: { const: 'payload-started' }, payloadId: id, pid: int(1, 2 ** 31) },
  },
  {
    type: 'object',
    required: ['seq', 'at', 'type', 'payloadId', 'exitCode', 'signal'],
    additionalProperties: false,
    properties: {
      ...reportBase,
      type: { const: 'payload-ended' },
      payloadId: id,
      exitCode: nullable(int(-(2 ** 31), 2 ** 31)),
      signal: nullable(str(32, 1)),
      timedOut: { type: 'boolean' },
      overMemory: { type: 'boolean' },
      cpuSec: { type: 'number', minimum: 0 },
      peakRssMb: { type: 'number', minimum: 0 },
      outputTail: str(LIMITS.outputTail),
      message: str(LIMITS.message),
      evicted: {
        type: 'object',
        required: ['reason'],
        additionalProperties: false,
        properties: { reason: { type: 'string', enum: ['halt', 'signal', 'deadline', 'lease', 'error'] } },
      },
    },
  },
  {
    type: 'object',
    required: ['seq', 'at', 'type', 'payloadId', 'reason'],
    additionalProperties: false,
    properties: { ...reportBase, type: { const: 'payload-released' }, payloadId: id, reason: str(LIMITS.message) },
  },
  {
    type: 'object',
    required: ['seq', 'at', 'type', 'instructionId', 'ok'],
    additionalProperties: false,
    properties: {
      ...reportBase,
      type: { const: 'instruction-done' },
      instructionId: id,
      ok: { type: 'boolean' },
      message: str(LIMITS.message),
    },
  },
  {
    type: 'object',
    required: ['seq', 'at', 'type', 'state', 'reason'],
    additionalProperties: false,
    properties: { ...reportBase, type: { const: 'state' }, state: lifecycle, reason: str(LIMITS.message) },
  },
  {
    type: 'object',
    required: ['seq', 'at', 'type', 'code', 'message'],
    additionalProperties: false,
    properties: { ...reportBase, type: { const: 'shutdown' }, code: int(100, 999), message: str(LIMITS.message) },
  },
] as const;

export const reportsSchema = {
  type: 'object',
  required: ['reports'],
  additionalProperties: false,
  properties: {
    reports: {
      type: 'array',
      minItems: 1,
      maxItems: LIMITS.reportsPerRequest,
      // One branch per report type, chosen by `type`, so an error names the
      // field of the report that is wrong rather than every branch.
      items: {
        type: 'object',
        required: ['type'],
        properties: {
          type: { type: 'string', enum: reportSchemas.map((s) => s.properties.type.const) },
        },
        allOf: reportSchemas.map((s) => ({
          if: { properties: { type: { const: s.properties.type.const } } },
          then: s,
        })),
      },
    },
  },
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
    limit: pageLimit,
    cursor: idText,
    /** Skip this many rows (instead of a cursor; at most 1,000,000). */
    offset: { type: 'string', pattern: '^[0-9]{1,7}$' },
  },
} as const;

/** Path parameters that are numeric ids. */
export const idParamsSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    pilotId: { type: 'string', pattern: '^[1-9][0-9]{0,14}$' },
    payloadId: { type: 'string', pattern: '^[1-9][0-9]{0,14}$' },
  },
} as const;
