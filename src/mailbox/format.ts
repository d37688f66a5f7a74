/**
 * Mailbox mode (docs/hpc.md): where a compute node can reach nothing but a
 * shared filesystem, the agent (`vmpilot run --server file:///DIR/NAME`)
 * and the relay (`vmpilot relay --spool DIR`) exchange the pilot protocol's
 * HTTP calls as files. This module is the format both ends share; it is
 * pure (files.ts does the file system).
 *
 * One mailbox per agent, a directory `DIR/NAME` holding:
 *
 * ```
 * out/   <id>.req      requests the agent wrote (temp name, then renamed: never half-read)
 *        <id>.cancel   the agent gave up on request <id> (an aborted or timed-out call)
 * work/  <id>.req      requests a relay took (renamed from out/: one relay takes each, once)
 * in/    <id>.reply    the server's answer, written by the relay (temp name, then renamed)
 * ```
 *
 *   agent                         relay                          server
 *   out/<id>.req ──rename──▶ work/<id>.req ──HTTP──▶ POST /v1/…
 *   in/<id>.reply ◀──rename── (temp)      ◀──────── answer
 *
 * Ids sort in the order the agent made them (its start time, pid and a
 * counter, zero-padded), so a relay takes an agent's requests in order.
 * Names that do not parse (temp files start with a dot) are never taken.
 */

import { pilotCallKind } from '../protocol/pilot-calls.js';

/** The format's version (`v` in every message). */
export const MAILBOX_VERSION = 1;

/** The sub-directories of a mailbox. */
export const MAILBOX_DIRS = { out: 'out', work: 'work', in: 'in' } as const;

/** Longest body a request or reply may carry in a mailbox, bytes (the server takes 1 MiB requests). */
export const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

/** A request the agent wrote: one HTTP call of the pilot protocol. */
export interface MailboxRequest {
  v: 1;
  id: string;
  method: 'GET' | 'POST';
  /** The path on the server, e.g. `/v1/pilots/17/match`. */
  path: string;
  /** `Bearer <token>`: the registration token or the pilot's credential, passed on as it is. */
  authorization: string;
  /** The JSON body, as text (null for none). */
  body: string | null;
  /** When the agent wrote it (ms). */
  at: number;
  /** After this the agent no longer waits for the answer (ms): a relay need not send it. */
  expiresAt: number;
}

/** The answer a relay wrote: the server's status and body, or the relay's own error (502). */
export interface MailboxReply {
  v: 1;
  id: string;
  status: number;
  text: string;
  /** When the relay wrote it (ms). */
  at: number;
}

const ID = /^\d{15}-\d{1,10}-\d{9}$/;

/** The id of the `counter`th request of an agent that started at `startedAt` with process id `pid`. Pure. */
export function requestId(startedAt: number, pid: number, counter: number): string {
  return `${String(startedAt).padStart(15, '0')}-${pid}-${String(counter).padStart(9, '0')}`;
}

/** The file name of a request, a cancel or a reply with this id. */
export const names = {
  request: (id: string) => `${id}.req`,
  cancel: (id: string) => `${id}.cancel`,
  reply: (id: string) => `${id}.reply`,
};

/** What a file name in a mailbox is: a request, a cancel or a reply, and its id; null for anything else (temp files). Pure. */
export function parseName(name: string): { kind: 'request' | 'cancel' | 'reply'; id: string } | null {
  const m = /^(.+)\.(req|cancel|reply)$/.exec(name);
  if (!m || !ID.test(m[1]!)) return null;
  return { kind: m[2] === 'req' ? 'request' : m[2] === 'cancel' ? 'cancel' : 'reply', id: m[1]! };
}

/** The requests among `fileNames`, in the order they were made. Pure. */
export function requestsInOrder(fileNames: readonly string[]): string[] {
  return fileNames
    .map(parseName)
    .filter((n): n is { kind: 'request'; id: string } => n?.kind === 'request')
    .map((n) => n.id)
    .sort();
}


/** A request file's text, checked; throws an Error naming what is wrong. Pure. */
export function parseRequest(text: string, id: string): MailboxRequest {
  const doc = parseObject(text, 'request');
  const r = doc as Partial<MailboxRequest>;
  if (r.v !== MAILBOX_VERSION) throw new Error(`request ${id}: v is ${JSON.stringify(r.v)}, this relay reads version ${MAILBOX_VERSION}`);
  if (r.id !== id) throw new Error(`request ${id}: its id field says ${JSON.stringify(r.id)}`);
  if (r.method !== 'GET' && r.method !== 'POST') throw new Error(`request ${id}: method must be GET or POST`);
  if (typeof r.path !== 'string' || pilotCallKind(r.method, r.path) === null) throw new Error(`request ${id}: ${r.method} ${String(r.path)} is not a call of the pilot protocol`);
  if (typeof r.authorization !== 'string' || !/^Bearer \S{1,1024}$/.test(r.authorization)) throw new Error(`request ${id}: authorization must be "Bearer <token>"`);
  if (r.body !== null && typeof r.body !== 'string') throw new Error(`request ${id}: body must be a string of JSON or null`);
  for (const key of ['at', 'expiresAt'] as const) if (!Number.isFinite(r[key])) throw new Error(`request ${id}: ${key} must be a time in ms`);
  return r as MailboxRequest;
}

/** A reply file's text, checked; throws an Error naming what is wrong. Pure. */
export function parseReply(text: string, id: string): MailboxReply {
  const r = parseObject(text, 'reply') as Partial<MailboxReply>;
  if (r.v !== MAILBOX_VERSION) throw new Error(`reply ${id}: v is ${JSON.stringify(r.v)}, this agent reads version ${MAILBOX_VERSION}`);
  if (r.id !== id) throw new Error(`reply ${id}: its id field says ${JSON.stringify(r.id)}`);
  if (!Number.isInteger(r.status) || r.status! < 100 || r.status! > 599) throw new Error(`reply ${id}: status must be an HTTP status`);
  if (typeof r.text !== 'string') throw new Error(`reply ${id}: text must be a string`);
  return r as MailboxReply;
}

function parseObject(text: string, what: string): object {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`${what} is not JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error(`${what} is not a JSON object`);
  return doc;
}
