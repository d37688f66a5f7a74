/**
 * Which HTTP calls make up the pilot protocol: what a relay forwards for the
 * agents behind it (docs/hpc.md), and nothing else (no admin route). Pure.
 */

/** What a pilot call is to a relay: a short call, or a match the server may hold open (a long poll). */
export type PilotCallKind = 'call' | 'long-poll';

/** The kind of `method path` when it is a call of the pilot protocol, else null. */
export function pilotCallKind(method: string, path: string): PilotCallKind | null {
  if (method === 'GET') return path === '/v1/health' ? 'call' : null;
  if (method !== 'POST') return null;
  if (path === '/v1/register') return 'call';
  const m = /^\/v1\/pilots\/\d{1,15}\/(heartbeat|match|reports)$/.exec(path);
  if (!m) return null;
  return m[1] === 'match' ? 'long-poll' : 'call';
}
