import { statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FilePrices } from '../../../../src/server/director/prices.js';
import { FakeClock } from '../../../../src/shared/clock.js';
import { silentLogger } from '../../../../src/shared/log.js';
import { tempDir } from '../helpers.js';
import { endpoint } from './fixtures.js';

describe('prices from a price file', () => {
  const tmp = tempDir();
  afterAll(() => tmp.remove());
  const file = path.join(tmp.dir, 'prices.json');
  const ep = endpoint('cloud', {
    shapes: {
      small: { cores: 2, memoryMb: 4000, price: { file, maxAgeSec: 600 } },
      big: { cores: 8, memoryMb: 16000, price: { file, key: 'm5.2xlarge', maxAgeSec: 600 } },
      odd: { cores: 1, memoryMb: 1000, price: { file, key: 'broken', maxAgeSec: 600 } },
      fixed: { cores: 1, memoryMb: 1000, costPerHour: 0.5 },
    },
  });

  it('reads each shape\'s key while the file is fresh; a bad value, a missing key or a stale file gives no price', async () => {
    writeFileSync(file, JSON.stringify({ small: 0.031, 'm5.2xlarge': 0.12, broken: 'cheap' }));
    const clock = new FakeClock(statSync(file).mtimeMs + 1000);
    const prices = new FilePrices(clock, silentLogger());
    expect([...(await prices.prices([ep]))]).toEqual([['cloud/small', 0.031], ['cloud/big', 0.12]]);
    expect([...prices.origins()]).toEqual([['cloud/small', `price file ${file} (key small)`], ['cloud/big', `price file ${file} (key m5.2xlarge)`]]);
    utimesSync(file, new Date(clock.now() - 601_000), new Date(clock.now() - 601_000));
    expect((await prices.prices([ep])).size).toBe(0);
    writeFileSync(file, 'not json');
    expect((await prices.prices([ep])).size).toBe(0);
  });
});
