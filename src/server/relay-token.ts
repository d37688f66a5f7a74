/**
 * `vmpilot-server relay-token --name N --site S --out FILE`: make a relay's
 * token (or read the one already in FILE) and print the entry that tells the
 * server about it (`relays.tokens` in `serve --config`, which holds only the
 * token's sha256). The token goes into FILE, mode 0600, never on a command
 * line or in the server's configuration.
 */
import { open, readFile } from 'node:fs/promises';
import { VmpilotError, describeError } from '../shared/errors.js';
import { newSecret, sha256Hex } from './api/auth.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

/** What `relay-token` is told. */
export interface RelayTokenOptions {
  name?: string | undefined;
  site?: string | undefined;
  out?: string | undefined;
}

/** The `relays.tokens` entry of a relay, as one line of YAML. Pure. */
export function relayEntry(name: string, site: string, token: string): string {
  return `- { name: ${name}, site: ${site}, sha256: ${sha256Hex(token)} }`;
}

/** Make (or read) the token in `out` and print what to add to the server's configuration. */
export async function relayTokenCommand(o: RelayTokenOptions, write: (line: string) => void = (line) => void process.stdout.write(`${line}\n`)): Promise<void> {
  for (const flag of ['name', 'site'] as const) {
    const v = o[flag];
    if (v === undefined || !NAME.test(v)) throw new VmpilotError('VMP_USAGE', `--${flag} ${v === undefined ? 'is required' : `"${v}"`}: expected 1 to 100 letters, digits, _ . - (e.g. --name login01 --site CC-IN2P3)`);
  }
  if (!o.out) throw new VmpilotError('VMP_USAGE', '--out FILE is required: the file the relay reads its token from (vmpilot relay --relay-token-file FILE)');
  let token: string;
  let made = false;
  try {
    token = (await readFile(o.out, 'utf8')).trim();
    if (!/^[A-Za-z0-9._~+/=-]{16,512}$/.test(token)) throw new VmpilotError('VMP_CONFIG', `${o.out} holds no relay token (16 to 512 characters of A-Z a-z 0-9 . _ ~ + / = - on one line); remove it to make a new one`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      if (err instanceof VmpilotError) throw err;
      throw new VmpilotError('VMP_CONFIG', `cannot read ${o.out}: ${describeError(err)}`, { cause: err });
    }
    token = newSecret();
    try {
      const handle = await open(o.out, 'wx', 0o600);
      await handle.writeFile(`${token}\n`).finally(() => handle.close());
    } catch (e) {
      throw new VmpilotError('VMP_CONFIG', `cannot write ${o.out}: ${describeError(e)}`, { cause: e });
    }
    made = true;
  }
  write(made ? `relay token written to ${o.out} (mode 0600): start the relay with --relay-token-file ${o.out}` : `relay token read from ${o.out}`);
  write('add this to relays.tokens in the server\'s --config file, then restart the server:');
  write(`  ${relayEntry(o.name!, o.site!, token)}`);
}
