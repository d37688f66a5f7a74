/**
 * What the JSON schemas of both audiences share: the bounds that keep one
 * request small (LIMITS), the small builders every schema uses, and the path
 * parameters that are ids. The request schemas are in pilot-schemas.ts and
 * admin-schemas.ts (draft-07, as fastify's Ajv takes them): the server
 * validates each body against its schema before it touches anything; a body
 * that does not fit gets 400 with a message naming the field, and changes
 * nothing. Every object is closed (`additionalProperties: false`) so a
 * misspelt field is an error, not a no-op.
 */

/** An integer from `minimum` to `maximum`. */
export const int = (minimum: number, maximum: number) => ({ type: 'integer', minimum, maximum }) as const;
/** A string of `minLength` to `maxLength` characters. */
export const str = (maxLength: number, minLength = 0) => ({ type: 'string', minLength, maxLength }) as const;
/** `s`, or null. */
export const nullable = <T extends object>(s: T) => ({ anyOf: [s, { type: 'null' }] }) as const;

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

/** A pilot, payload or instruction id in a body. */
export const id = int(1, Number.MAX_SAFE_INTEGER);
/** A number of cores a payload or a node may have. */
export const cores = int(1, LIMITS.cores);

/** Path parameters that are numeric ids. */
export const idParamsSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    pilotId: { type: 'string', pattern: '^[1-9][0-9]{0,14}$' },
    payloadId: { type: 'string', pattern: '^[1-9][0-9]{0,14}$' },
  },
} as const;
