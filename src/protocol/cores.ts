import type { CoreRequest } from './common-messages.js';

/**
 * How many cores a payload gets on a node with `freeCores` of `totalCores`
 * free, or null when it does not fit there now. The same rule holds on the
 * server (which payload to hand out) and in the agent (what it accounts).
 * - exactly N: N when N cores are free;
 * - MIN-MAX: as many as are free, up to MAX, when at least MIN are;
 * - whole node: all cores, only when the node is empty.
 */
export function coresFor(request: CoreRequest, freeCores: number, totalCores: number): number | null {
  if (request.wholeNode) return freeCores === totalCores && totalCores > 0 ? totalCores : null;
  if (request.min > freeCores) return null;
  return Math.min(request.max, freeCores);
}

/** The smallest number of cores a payload can start with on a node of `totalCores`. */
export function minimumCores(request: CoreRequest, totalCores: number): number {
  return request.wholeNode ? totalCores : request.min;
}

export const ONE_CORE: CoreRequest = Object.freeze({ min: 1, max: 1, wholeNode: false });

/**
 * A core request that does not parse: `problem` is what was wrong, worded to
 * follow the value (` is not N, …` or `: at least 1 core`), so that a caller
 * can name the value its own way (`--cores "0": at least 1 core`) without
 * reading the message.
 */
export class CoreRequestError extends RangeError {
  constructor(
    readonly text: string,
    readonly problem: string,
  ) {
    super(`cores "${text}"${problem}`);
  }
}

/**
 * Parse a core request as users write it: "4", "2-8", or "whole".
 * Throws a CoreRequestError whose message says what was wrong.
 */
export function parseCoreRequest(text: string): CoreRequest {
  const t = text.trim();
  if (t === 'whole' || t === 'whole-node') return { min: 1, max: 1, wholeNode: true };
  const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(t);
  if (!m) throw new CoreRequestError(text, ' is not N, MIN-MAX or "whole"');
  const min = Number(m[1]);
  const max = m[2] === undefined ? min : Number(m[2]);
  if (min < 1) throw new CoreRequestError(text, ': at least 1 core');
  if (max < min) throw new CoreRequestError(text, ': MAX is smaller than MIN');
  if (max > 4096) throw new CoreRequestError(text, ': at most 4096 cores');
  return { min, max, wholeNode: false };
}

/** The inverse of parseCoreRequest: "4", "2-8" or "whole". */
export function formatCoreRequest(request: CoreRequest): string {
  if (request.wholeNode) return 'whole';
  return request.min === request.max ? String(request.min) : `${request.min}-${request.max}`;
}
