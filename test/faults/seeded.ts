/**
 * A small seeded random generator for the fault tests, so that the "random
 * moments" of a fault are the same in every run with the same seed. The seed
 * comes from `VMPILOT_FAULT_SEED` or the test's default, and the test logs it
 * with the plan it drew.
 */

/** A generator of numbers in [0, 1) from `seed` (mulberry32; the benchmarks' own, bench/seeded.ts). */
export { rng as seeded } from '../../bench/seeded.js';

/** The seed to use: `VMPILOT_FAULT_SEED` when set, else `fallback`. */
export function faultSeed(fallback: number): number {
  const given = process.env.VMPILOT_FAULT_SEED;
  if (given === undefined || given === '') return fallback;
  const n = Number(given);
  if (!Number.isInteger(n)) throw new Error(`VMPILOT_FAULT_SEED must be an integer, not ${JSON.stringify(given)}`);
  return n;
}

/** An integer in [min, max] from `random`. */
export function between(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}
