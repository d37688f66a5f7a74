/**
 * Small checks for the `endpoints:` section of `serve --config`. Each names
 * the key by its full path (`endpoints.hpc.limits.instances`), the value,
 * and what was expected, as VMP_CONFIG; the first bad key stops the load, so
 * nothing half-checked is ever used.
 */
import { VmpilotError } from '../../shared/errors.js';

/** Where a value sits: the file it came from and its key path. */
export interface At {
  /** The file (or "config"), named first in every message. */
  where: string;
  /** The key path, e.g. endpoints.hpc.shapes.big.cores. */
  path: string;
}

/** The key path one level down. */
export const under = (at: At, key: string): At => ({ where: at.where, path: `${at.path}.${key}` });

/** A VMP_CONFIG error about the value at `at`. */
export function badConfig(at: At, message: string): VmpilotError {
  return new VmpilotError('VMP_CONFIG', `${at.where}: ${at.path} ${message}`);
}

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : v === undefined ? 'missing' : JSON.stringify(v) ?? String(v));

/**
 * A mapping whose keys are all in `known`: returned as a record. Absent
 * (`undefined` or `null`) gives an empty record when `optional`.
 */
export function mapping(value: unknown, at: At, known: readonly string[] | null, optional = true): Record<string, unknown> {
  if ((value === undefined || value === null) && optional) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badConfig(at, `is ${show(value)}; expected a mapping of keys to values`);
  const rec = value as Record<string, unknown>;
  if (known) {
    for (const key of Object.keys(rec)) {
      if (!known.includes(key)) throw badConfig(under(at, key), `is not a known key (known under ${at.path}: ${known.join(', ')})`);
    }
  }
  return rec;
}

/** A whole number from `min` to `max`; `fallback` when absent (undefined: required). */
export function int(value: unknown, at: At, min: number, max: number, fallback?: number): number {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw badConfig(at, `is ${show(value)}; expected a whole number from ${min} to ${max}`);
  }
  return value;
}

/** A finite number from `min` to `max`; `fallback` when absent (undefined: required). */
export function num(value: unknown, at: At, min: number, max: number, fallback?: number): number {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw badConfig(at, `is ${show(value)}; expected a number from ${min} to ${max}`);
  }
  return value;
}

/** A string matching `pattern` (described by `expected`); `fallback` when absent (undefined: required). */
export function str(value: unknown, at: At, pattern: RegExp, expected: string, fallback?: string): string {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'string' || !pattern.test(value)) throw badConfig(at, `is ${show(value)}; expected ${expected}`);
  return value;
}

/** An optional string matching `pattern`: null when absent. */
export function optStr(value: unknown, at: At, pattern: RegExp, expected: string): string | null {
  return value === undefined || value === null ? null : str(value, at, pattern, expected);
}

/** true or false; `fallback` when absent. */
export function bool(value: unknown, at: At, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw badConfig(at, `is ${show(value)}; expected true or false`);
  return value;
}

/** A list of strings each matching `pattern`; empty when absent. */
export function strList(value: unknown, at: At, pattern: RegExp, expected: string, maxItems = 100): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.length > maxItems) throw badConfig(at, `is ${show(value)}; expected a list of at most ${maxItems} ${expected}`);
  return value.map((v, i) => str(v, under(at, String(i)), pattern, expected));
}

/** An absolute path without shell characters (it is written into shell and argv). */
export const ABSOLUTE_PATH = /^\/[A-Za-z0-9._/%@+-]*$/;
/** What ABSOLUTE_PATH accepts, for messages. */
export const ABSOLUTE_PATH_TEXT = 'an absolute path of letters, digits and . _ / % @ + -';
/** A name that fits a job header and a file name. */
export const PLAIN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** What PLAIN_NAME accepts, for messages. */
export const PLAIN_NAME_TEXT = '1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit';
