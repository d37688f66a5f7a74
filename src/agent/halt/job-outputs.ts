/**
 * `$JOBOUTPUTS`, the Vac convention: a directory, or an http(s) URL to PUT
 * files to, where the agent keeps a `heartbeat` file up to date and leaves
 * its `shutdown_message`. The real sink writes atomically (directory) or
 * PUTs `<url>/<name>` (URL); `memoryOutputs` keeps files in memory for tests.
 */
import path from 'node:path';
import { VmpilotError } from '../../shared/errors.js';
import { HttpClient } from '../control/http-call.js';
import type { JobOutputs } from '../ports.js';
import { writeFileAtomic } from '../state/file-store.js';

export type { JobOutputs } from '../ports.js';

/** The sink for a `$JOBOUTPUTS` value (a directory or an http(s) URL), or null when unset. */
export function jobOutputsFor(target: string | null): JobOutputs | null {
  if (!target) return null;
  if (/^https?:\/\//i.test(target)) {
    const base = target.endsWith('/') ? target : `${target}/`;
    const client = new HttpClient();
    return {
      async put(name, content) {
        const url = new URL(name, base).href;
        let status: number;
        try {
          ({ status } = await client.call({ method: 'PUT', url, body: content, headers: { 'content-type': 'text/plain' }, timeoutMs: 10_000 }));
        } catch (err) {
          throw new VmpilotError('VMP_STATE', `cannot PUT ${url}: ${(err as Error).message}`, { cause: err });
        }
        if (status < 200 || status > 299) throw new VmpilotError('VMP_STATE', `PUT ${url} answered HTTP ${status}`);
      },
    };
  }
  return {
    async put(name, content) {
      const file = path.join(target, name);
      try {
        await writeFileAtomic(file, content);
      } catch (err) {
        throw new VmpilotError('VMP_STATE', `cannot write ${file}: ${(err as Error).message}`, { cause: err });
      }
    },
  };
}

/** JobOutputs in memory, for tests. */
export class MemoryOutputs implements JobOutputs {
  readonly files = new Map<string, string>();
  async put(name: string, content: string): Promise<void> {
    this.files.set(name, content);
  }
}
