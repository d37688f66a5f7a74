import { describe, expect, it } from 'vitest';
import { WakeBatch, parseWake, reconnectDelayMs, wakePayloads } from '../../../../src/server/api/wake-messages.js';

describe('wake-up notifications', () => {
  it('are written as all or pilot:ID,… and read back the same', () => {
    expect(wakePayloads({ all: true })).toEqual(['all']);
    expect(wakePayloads({ all: false, pilots: [7, 12] })).toEqual(['pilot:7,12']);
    for (const payload of ['all', 'pilot:7', 'pilot:7,12,3']) {
      const wake = parseWake(payload)!;
      expect(wakePayloads(wake)).toEqual([payload]);
    }
    expect(parseWake('pilot:7,12')).toEqual({ all: false, pilots: [7, 12] });
  });

  it('cut a long list of pilots into payloads PostgreSQL takes (under 8000 bytes), losing none', () => {
    const pilots = Array.from({ length: 3000 }, (_, i) => 1_000_000 + i);
    const payloads = wakePayloads({ all: false, pilots });
    expect(payloads.length).toBeGreaterThan(1);
    for (const p of payloads) expect(Buffer.byteLength(p)).toBeLessThan(8000);
    expect(payloads.flatMap((p) => (parseWake(p) as { pilots: readonly number[] }).pilots)).toEqual(pilots);
  });

  it('ignore what this server does not know (a newer server, or anyone else on the channel)', () => {
    for (const payload of ['', undefined, 'ALL', 'all ', 'pilot:', 'pilot:x', 'pilot:0', 'pilot:1,,2', 'pilots:1', '{"all":true}']) {
      expect(parseWake(payload)).toBeNull();
    }
  });
});

describe('WakeBatch', () => {
  it('coalesces many wake-ups of everyone into one, and a pilot named twice into one', () => {
    const b = new WakeBatch();
    expect(b.take()).toBeNull();
    for (let i = 0; i < 50; i++) b.add({ all: true });
    expect(b.take()).toEqual({ all: true });
    expect(b.empty).toBe(true);
    b.add({ all: false, pilots: [3] });
    b.add({ all: false, pilots: [4, 3] });
    expect(b.take()).toEqual({ all: false, pilots: [3, 4] });
  });

  it('lets a wake-up of everyone stand for the pilots', () => {
    const b = new WakeBatch();
    b.add({ all: false, pilots: [3] });
    b.add({ all: true });
    b.add({ all: false, pilots: [4] });
    expect(b.take()).toEqual({ all: true });
  });
});

describe('reconnectDelayMs', () => {
  it('backs off from 100 ms, doubling, to at most 5 s', () => {
    expect([0, 1, 2, 3, 5, 6, 10, 1000].map(reconnectDelayMs)).toEqual([100, 200, 400, 800, 3200, 5000, 5000, 5000]);
  });
});
