import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { matchesHash, sha256Hex } from '../../../src/server/api/auth.js';
import { openSqliteStore, type SqliteStore } from '../../../src/server/store/sqlite.js';
import { TOKEN_SETTINGS, resolveTokens } from '../../../src/server/tokens.js';
import { tempDir } from './helpers.js';

describe('resolveTokens', () => {
  let tmp: ReturnType<typeof tempDir>;
  let store: SqliteStore;
  beforeEach(() => {
    tmp = tempDir();
    store = openSqliteStore(path.join(tmp.dir, 's.db'));
  });
  afterEach(async () => {
    await store.close();
    tmp.remove();
  });

  it('generates both tokens on first start, stores only their hashes, and reuses them later', async () => {
    const first = await resolveTokens(store, {});
    expect(first.generated.admin).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(first.generated.pilot).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(await store.getSetting(TOKEN_SETTINGS.admin)).toBe(sha256Hex(first.generated.admin ?? ''));
    expect(await store.getSetting(TOKEN_SETTINGS.admin)).not.toContain(first.generated.admin);
    const second = await resolveTokens(store, {});
    expect(second.generated).toEqual({});
    expect(second.hashes).toEqual(first.hashes);
  });

  it('takes a given token over the stored one', async () => {
    await resolveTokens(store, {});
    const r = await resolveTokens(store, { admin: 'my-admin', pilot: 'my-pilot' });
    expect(r.generated).toEqual({});
    expect(matchesHash('my-admin', r.hashes.adminHash)).toBe(true);
    expect(matchesHash('my-pilot', r.hashes.pilotHash)).toBe(true);
    expect(matchesHash('my-pilot', r.hashes.adminHash)).toBe(false);
  });
});
