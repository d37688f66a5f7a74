import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ContentCache } from '../../../src/relay/cache.js';
import { silentLogger } from '../../../src/shared/log.js';
import { tempDir } from '../server/helpers.js';

const bytes = Buffer.alloc(3 * 1024 * 1024, 7);
const sha = createHash('sha256').update(bytes).digest('hex');

describe('the relay cache', () => {
  let tmp: ReturnType<typeof tempDir>;
  let cache: ContentCache;
  beforeEach(() => {
    tmp = tempDir();
    cache = new ContentCache(path.join(tmp.dir, 'cache'), silentLogger());
  });
  afterEach(() => tmp.remove());

  it('fetches a file once however many ask while it comes, and serves the rest from disk', async () => {
    let fetches = 0;
    const slow = new PassThrough();
    const fetch = async () => {
      fetches++;
      return { stream: slow, from: 'http://server/v1/agent/vmpilot-linux-x64.gz' };
    };
    const asks = Array.from({ length: 20 }, () => cache.get(sha, bytes.length, fetch));
    // the bytes come in pieces, after every ask is waiting
    for (let i = 0; i < bytes.length; i += 256 * 1024) slow.write(bytes.subarray(i, i + 256 * 1024));
    slow.end();
    const files = await Promise.all(asks);
    expect(new Set(files).size).toBe(1);
    expect(fetches).toBe(1);
    expect(readFileSync(files[0]!).equals(bytes)).toBe(true);
    expect(await cache.get(sha, bytes.length, fetch)).toBe(files[0]);
    expect(fetches).toBe(1);
  });

  it('keeps nothing that is not the file asked for, and fetches again on the next ask', async () => {
    const other = Buffer.from('a different agent');
    await expect(cache.get(sha, bytes.length, async () => ({ stream: Readable.from([other]), from: 'http://server/x' }))).rejects.toMatchObject({
      code: 'VMP_SERVER',
      message: expect.stringMatching(/http:\/\/server\/x sent 17 bytes with sha256 [0-9a-f]{64}; expected 3145728 bytes with sha256 [0-9a-f]{64}: not kept, not served/),
    });
    expect(readdirSync(path.join(tmp.dir, 'cache'))).toEqual([]);
    // the right hash but a size the manifest does not say
    await expect(cache.get(sha, bytes.length + 1, async () => ({ stream: Readable.from([bytes]), from: 'http://server/x' }))).rejects.toMatchObject({ code: 'VMP_SERVER' });
    // a download that breaks off
    const broken = new PassThrough();
    const pending = cache.get(sha, bytes.length, async () => {
      broken.write(bytes.subarray(0, 1000));
      // once the cache reads it
      setImmediate(() => broken.destroy(new Error('connection reset')));
      return { stream: broken, from: 'http://server/x' };
    });
    await expect(pending).rejects.toMatchObject({ code: 'VMP_UNREACHABLE', message: expect.stringMatching(/broke off after \d+ bytes/) });
    expect(readdirSync(path.join(tmp.dir, 'cache'))).toEqual([]);
    // then the right one
    const file = await cache.get(sha, bytes.length, async () => ({ stream: Readable.from([bytes]), from: 'http://server/x' }));
    expect(existsSync(file)).toBe(true);
    expect(cache.fetches).toBe(4);
  });

  it('refuses a name that is not a sha256 (no path out of the cache)', async () => {
    await expect(cache.get('../../etc/passwd', null, async () => ({ stream: Readable.from([]), from: 'x' }))).rejects.toMatchObject({ code: 'VMP_BAD_REQUEST' });
  });
});
