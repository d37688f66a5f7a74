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

  it('stays within its bound: the least recently used files go, the one just fetched stays, a removed one is fetched again', async () => {
    const file = (n: number) => Buffer.alloc(1024 * 1024, n);
    const shaOf = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const [a, b, c] = [file(1), file(2), file(3)];
    let fetches = 0;
    const from = (data: Buffer) => async () => {
      fetches++;
      return { stream: Readable.from([data]), from: 'http://server/x' };
    };
    const bounded = new ContentCache(path.join(tmp.dir, 'bounded'), silentLogger(), 2.5 * 1024 * 1024);
    await bounded.get(shaOf(a), a.length, from(a));
    await bounded.get(shaOf(b), b.length, from(b));
    // a is asked for again: b is now the least recently used
    await bounded.get(shaOf(a), a.length, from(a));
    expect(fetches).toBe(2);
    await bounded.get(shaOf(c), c.length, from(c));
    expect(readdirSync(bounded.dir).sort()).toEqual([shaOf(a), shaOf(c)].sort());
    await bounded.get(shaOf(b), b.length, from(b));
    expect(fetches).toBe(4);
    expect(readdirSync(bounded.dir)).toContain(shaOf(b));
    expect(readdirSync(bounded.dir)).toHaveLength(2);
    // a single file larger than the bound is still kept (and served) when it is the one just fetched
    const big = Buffer.alloc(3 * 1024 * 1024, 9);
    expect(readFileSync(await bounded.get(shaOf(big), big.length, from(big))).equals(big)).toBe(true);
    expect(readdirSync(bounded.dir)).toEqual([shaOf(big)]);
  });

  it('refuses a name that is not a sha256 (no path out of the cache)', async () => {
    await expect(cache.get('../../etc/passwd', null, async () => ({ stream: Readable.from([]), from: 'x' }))).rejects.toMatchObject({ code: 'VMP_BAD_REQUEST' });
  });
});
