/**
 * HTTP for the cloud drivers' own clients (openstack, opennebula) over
 * undici: one connection pool per driver (with the cloud's CA when given),
 * a time limit on every call, and failures as VMP_DRIVER carrying what the
 * cloud said (its status and its own message), never a bare "fetch failed".
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Agent, request, type Dispatcher } from 'undici';
import { VmpilotError, describeError } from '../../../shared/errors.js';
import type { SecretRef } from '../cloud-settings.js';

/** A cloud's answer. */
export interface CloudResponse {
  status: number;
  headers: Readonly<Record<string, string>>;
  text: string;
}

/** How a driver talks HTTP to its cloud. */
export interface CloudHttp {
  /** Send a request; any status is an answer (only no answer throws: VMP_DRIVER). */
  send(method: string, url: string, options?: { headers?: Record<string, string>; body?: string }): Promise<CloudResponse>;
  close(): Promise<void>;
}

/** Default limit of one call. */
export const CLOUD_CALL_MS = 60_000;
/** An answer larger than this is not read (a listing of every server of a large project stays well below). */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

/** The undici client of one driver. */
export function cloudHttp(options: { caFile: string | null; timeoutMs?: number }): CloudHttp {
  let ca: string | undefined;
  if (options.caFile) {
    try {
      ca = readFileSync(options.caFile, 'utf8');
    } catch (err) {
      throw new VmpilotError('VMP_CONFIG', `caFile ${options.caFile} cannot be read: ${describeError(err)}`, { cause: err });
    }
  }
  const ms = options.timeoutMs ?? CLOUD_CALL_MS;
  const dispatcher: Dispatcher = new Agent({ connect: ca ? { ca } : {}, headersTimeout: ms, bodyTimeout: ms, connections: 8 });
  return {
    async send(method, url, o = {}) {
      try {
        const res = await request(url, {
          method: method as Dispatcher.HttpMethod,
          headers: o.headers,
          body: o.body,
          dispatcher,
          signal: AbortSignal.timeout(ms),
        });
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const chunk of res.body) {
          size += (chunk as Buffer).length;
          if (size > MAX_BODY_BYTES) {
            res.body.destroy();
            throw new Error(`the answer is larger than ${MAX_BODY_BYTES} bytes`);
          }
          chunks.push(chunk as Buffer);
        }
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
        return { status: res.statusCode, headers, text: Buffer.concat(chunks).toString('utf8') };
      } catch (err) {
        const cause = (err as { cause?: unknown }).cause;
        throw new VmpilotError('VMP_DRIVER', `${method} ${redact(url)}: no answer: ${describeError(err)}${cause ? ` (${describeError(cause)})` : ''}`, { cause: err });
      }
    },
    async close() {
      await dispatcher.close();
    },
  };
}

/** A URL fit for a message: no user or password. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '(a bad URL)';
  }
}

/** The secret a setting names: inline, or read from its file now (so a rotated file is picked up). */
export async function readSecret(ref: SecretRef, what: string): Promise<string> {
  if ('value' in ref) return ref.value;
  try {
    const text = (await readFile(ref.file, 'utf8')).trim();
    if (text === '' || /[\n\r]/.test(text)) throw new Error('expected the secret alone on one line');
    return text;
  } catch (err) {
    throw new VmpilotError('VMP_CONFIG', `${what} file ${ref.file} cannot be used: ${describeError(err)}`, { cause: err });
  }
}
