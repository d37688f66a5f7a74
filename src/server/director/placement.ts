/**
 * Where queued work would fit: the room of one machine and how many
 * payloads of a demand item it takes. Shared by the decision (existing
 * supply, then the machines it plans) and its tests. Pure.
 */
import { DEFAULT_CLASS, type DemandItem } from './demand.js';
import type { ShapeConfig } from './endpoint-config.js';
import type { Supply } from './supply.js';

/** Room on one machine, changed as payloads are placed. */
export interface Room {
  freeCores: number;
  totalCores: number;
  freeMemoryMb: number;
  /** Seconds left (null: no limit). */
  remainingSec: number | null;
  /** The shape of a machine the decision plans; absent or null: a machine already there (supply). */
  shape?: ShapeConfig | null;
}

/**
 * True when a machine serves payloads of `requirementClass`. Today a
 * machine serves the default class only: shapes declare no capabilities
 * yet, and supply does not say what its pilots have, so work with
 * requirements is neither started for nor counted as met by free cores;
 * it stays unmet demand of its own class (`no-fitting-shape`). Declared
 * capabilities of shapes will be matched against the class here.
 */
export function servesClass(_shape: ShapeConfig | null, requirementClass: string): boolean {
  return requirementClass === DEFAULT_CLASS;
}

/** How many payloads of `d` fit in `room` now (at most `d.count`). */
export function unitsThatFit(d: DemandItem, room: Room): number {
  if (d.count <= 0) return 0;
  if (!servesClass(room.shape ?? null, d.requirementClass)) return 0;
  if (d.wallSec !== null && room.remainingSec !== null && d.wallSec > room.remainingSec) return 0;
  if (d.wholeNode) {
    return room.freeCores === room.totalCores && room.freeCores > 0 && d.memoryMb <= room.freeMemoryMb ? 1 : 0;
  }
  let n = Math.floor(room.freeCores / Math.max(1, d.cores));
  if (d.memoryMb > 0) n = Math.min(n, Math.floor(room.freeMemoryMb / d.memoryMb));
  return Math.max(0, Math.min(n, d.count));
}

/** Take `n` payloads of `d` out of `room`. */
export function take(d: DemandItem, room: Room, n: number): void {
  if (n <= 0) return;
  if (d.wholeNode) {
    room.freeCores = 0;
    room.freeMemoryMb -= d.memoryMb;
    return;
  }
  room.freeCores -= n * d.cores;
  room.freeMemoryMb -= n * d.memoryMb;
}

/** The cores `n` payloads of `d` use on a machine of `totalCores`. */
export function coresUsed(d: DemandItem, n: number, totalCores: number): number {
  if (n <= 0) return 0;
  return d.wholeNode ? totalCores : n * d.cores;
}

/** True when an empty machine of `shape`, living `lifeSec`, runs a payload of `d` at all. */
export function shapeFits(d: DemandItem, shape: ShapeConfig, lifeSec: number): boolean {
  if (!servesClass(shape, d.requirementClass)) return false;
  if (!d.wholeNode && d.cores > shape.cores) return false;
  if (d.memoryMb > shape.memoryMb) return false;
  return d.wallSec === null || d.wallSec <= lifeSec;
}

/** Place demand on the supply, first fit (serving machines first); `remaining` keeps what is left. */
export function placeOnSupply(remaining: DemandItem[], supply: Supply, serves: (endpoint: string | null, group: string) => boolean): { payloads: number; cores: number } {
  const open = [...supply.slots]
    .sort((a, b) => Number(a.coming) - Number(b.coming))
    .map((s) => ({ endpoint: s.endpoint, freeCores: s.freeCores, totalCores: s.totalCores, freeMemoryMb: s.freeMemoryMb, remainingSec: s.remainingSec }))
    .filter((r) => r.freeCores > 0);
  let payloads = 0;
  let cores = 0;
  // an upper bound of the free cores of any open room, exact after a scan that found no room
  let maxFree = open.reduce((m, r) => Math.max(m, r.freeCores), 0);
  for (const d of remaining) {
    if (open.length === 0) break;
    if (!d.wholeNode && d.cores > maxFree) continue;
    let seen = 0;
    for (let j = 0; j < open.length && d.count > 0; j++) {
      const r = open[j]!;
      const n = serves(r.endpoint, d.group) ? unitsThatFit(d, r) : 0;
      if (n > 0) {
        take(d, r, n);
        d.count -= n;
        payloads += n;
        cores += n * d.cores;
      }
      if (r.freeCores <= 0) {
        open.splice(j, 1);
        j--;
      } else seen = Math.max(seen, r.freeCores);
    }
    if (d.count > 0) maxFree = seen;
  }
  return { payloads, cores };
}
