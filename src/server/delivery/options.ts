/**
 * Validators for the options of `vmpilot-server user-data` and
 * `batch-script`. Each one names the flag, the value and what was expected
 * (VMP_USAGE), so a bad option gives a clear error instead of a script that
 * fails on the node hours later.
 */
import { X509Certificate } from 'node:crypto';
import { VmpilotError } from '../../shared/errors.js';

const usage = (flag: string, value: unknown, expected: string) =>
  new VmpilotError('VMP_USAGE', `${flag} ${typeof value === 'string' ? `"${value}"` : String(value)}: expected ${expected}`);

/** An http(s) URL without credentials, query or fragment; returned without a trailing slash. */
export function checkServerUrl(flag: string, value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw usage(flag, value, 'an http:// or https:// URL, e.g. https://pilots.example.org:8080');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw usage(flag, value, 'an http:// or https:// URL');
  if (u.username || u.password || u.search || u.hash) throw usage(flag, value, 'a URL without user, password, query or fragment');
  return u.href.replace(/\/+$/, '');
}

/** A bearer token: printable, no spaces or quotes (it is written into shell and YAML). */
export function checkToken(flag: string, value: string | undefined): string {
  if (value === undefined || value === '') throw new VmpilotError('VMP_USAGE', `${flag} is required (or VMPILOT_PILOT_TOKEN): the pilot registration token the node shows the server`);
  if (!/^[A-Za-z0-9._~+/=-]{8,512}$/.test(value)) throw usage(flag, '(hidden)', '8 to 512 characters of A-Z a-z 0-9 . _ ~ + / = -');
  return value;
}

/** A whole number from `min` to `max`. */
export function checkInt(flag: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) throw usage(flag, value, `a whole number from ${min} to ${max}`);
  return value;
}

/** Parse a command-line integer, naming the flag when it is not one. */
export function parseIntOption(flag: string, text: string, min: number, max: number): number {
  if (!/^\s*\d+\s*$/.test(text)) throw usage(flag, text, `a whole number from ${min} to ${max}`);
  return checkInt(flag, Number(text), min, max);
}

/** A name safe in a job header, a file name and a unit: letters, digits, . _ - (1 to 64). */
export function checkName(flag: string, value: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(value)) throw usage(flag, value, 'a name of 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit');
  return value;
}

/** An absolute path without spaces, quotes or shell characters. */
export function checkPath(flag: string, value: string): string {
  if (!/^\/[A-Za-z0-9._/%@+-]*$/.test(value) || value.split('/').includes('..')) {
    throw usage(flag, value, 'an absolute path of letters, digits and . _ / % @ + - (no "..")');
  }
  return value;
}

/** A lower-case hex sha256. */
export function checkSha256(flag: string, value: string): string {
  if (!/^[0-9a-f]{64}$/.test(value)) throw usage(flag, value, '64 lower-case hex digits (a sha256)');
  return value;
}

/** One of `choices`. */
export function checkChoice<T extends string>(flag: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value)) throw usage(flag, value, `one of ${choices.join(', ')}`);
  return value as T;
}

/** Seconds as HH:MM:SS (hours may exceed 24), the walltime form every batch system reads. */
export function hms(totalSec: number): string {
  const h = Math.floor(totalSec / 3600);
  const m = Math.floor((totalSec % 3600) / 60);
  const s = totalSec % 60;
  return [h, m, s].map((n) => String(n).padStart(2, '0')).join(':');
}

/** Where a generated script's registration secret comes from: the shared token, or one instance's own credential. */
export interface RegistrationSecret {
  /** The pilot registration token, shared by every pilot. */
  token: string | undefined;
  /**
   * The one-time registration credential of one instance (the director
   * starts each machine with its own), instead of `token`: the pilot that
   * registers with it is tied to that instance, and no shared token is on
   * the machine.
   */
  instanceCredential?: string | undefined;
}

/** The registration secret to write, checked: exactly one of the token and an instance credential. */
export function checkRegistration(o: RegistrationSecret): string {
  if (o.instanceCredential === undefined) return checkToken('--pilot-token', o.token);
  if (o.token !== undefined) throw new VmpilotError('VMP_USAGE', '--pilot-token and an instance credential exclude each other: a machine the director starts carries only its own credential');
  if (!/^[A-Za-z0-9._~+/=-]{8,512}$/.test(o.instanceCredential)) throw usage('instance credential', '(hidden)', '8 to 512 characters of A-Z a-z 0-9 . _ ~ + / = -');
  return o.instanceCredential;
}

/** The most PEM text `--ca-file` may embed (an IGTF bundle of about 100 CAs is some 150 KB). */
const CA_PEM_MAX = 1024 * 1024;

/**
 * The certificates of a `--ca-file` (a private CA, or a bundle such as the
 * IGTF's), checked and normalized: every `BEGIN/END CERTIFICATE` block must
 * parse as an X.509 certificate; text around the blocks (comments, openssl's
 * `subject=` lines) is dropped. Returns the blocks joined by newlines, ending
 * with one; VMP_USAGE naming the file when there is none or one is broken.
 */
export function checkCaPem(flag: string, file: string, text: string): string {
  if (text.length > CA_PEM_MAX) throw new VmpilotError('VMP_USAGE', `${flag} ${file}: ${text.length} bytes, more than the ${CA_PEM_MAX} a script may carry`);
  const blocks = text.match(/-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new VmpilotError('VMP_USAGE', `${flag} ${file}: no PEM certificate in it (expected -----BEGIN CERTIFICATE----- blocks)`);
  return blocks
    .map((block, i) => {
      const pem = block.replace(/\r/g, '');
      try {
        new X509Certificate(pem);
      } catch (err) {
        throw new VmpilotError('VMP_USAGE', `${flag} ${file}: certificate ${i + 1} of ${blocks.length} is not a valid X.509 certificate: ${(err as Error).message}`);
      }
      return pem;
    })
    .join('\n')
    .concat('\n');
}
