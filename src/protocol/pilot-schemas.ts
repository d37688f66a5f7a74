/**
 * JSON schemas of the pilot's request bodies (register, heartbeat, match,
 * reports), protocol version 1; the shared parts are in schema-parts.ts.
 */
import { ISOLATION_MODES } from './pilot-messages.js';
import { REQUIREMENT_LIMITS } from './requirements.js';
import { LIMITS, cores, id, int, nullable, str } from './schema-parts.js';

const epochMs = int(0, 8.64e15);
const coreCount = int(0, LIMITS.cores);
const lifecycle = { type: 'string', enum: ['booting', 'serving', 'draining', 'halting', 'halted'] } as const;
const labels = {
  type: 'object',
  maxProperties: 64,
  propertyNames: { maxLength: 100 },
  additionalProperties: str(1000),
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
