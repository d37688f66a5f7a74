import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { HeartbeatRequest, MatchRequest, RegisterRequest } from '../../../src/protocol/index.js';

/** A fresh temporary directory, removed by the returned function. */
export function tempDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'vmpilot-server-test-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export const registration = (r: Partial<RegisterRequest> = {}): RegisterRequest => ({
  hostname: 'node-1.example.org',
  version: '0.1.0',
  cores: 4,
  memoryMb: 8000,
  ...r,
});

export const heartbeat = (h: Partial<HeartbeatRequest> = {}): HeartbeatRequest => ({
  at: 1_700_000_000_000,
  state: 'serving',
  version: '0.1.0',
  uptimeSec: 10,
  cores: { total: 4, used: 1, free: 3 },
  memoryMb: { total: 8000, used: 1000 },
  payloads: [],
  ...h,
});

export const matchRequest = (m: Partial<MatchRequest> = {}): MatchRequest => ({
  freeCores: 4,
  totalCores: 4,
  freeMemoryMb: 8000,
  remainingSec: null,
  holding: [],
  waitSec: 0,
  ...m,
});
