/**
 * Load the agent configuration: flags > environment > YAML config file >
 * defaults, validated once and frozen. This is the only module of the agent
 * that reads process.env. Errors name the key, the value and what was
 * expected: VMP_USAGE for a flag, VMP_CONFIG for the environment or the file.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { VmpilotError } from '../../shared/errors.js';
import { BATCH_ENV_KEYS } from '../resources/batch.js';
import { CONFIG_KEYS, PAYLOAD_ENV_KEYS, type AgentConfig, type KeySpec } from './schema.js';
import { mailboxSpoolOf } from '../control/mailbox-url.js';

/** Where the raw values come from. `flags` are commander's parsed options. */
export interface ConfigSources {
  flags: Record<string, unknown>;
  env?: Record<string, string | undefined>;
  /** Resolves a relative state dir; default process.cwd(). */
  cwd?: string;
  /** Reads the config file; default fs.readFileSync. */
  readFile?: (file: string) => string;
  /**
   * Parses the config file's YAML. Needed only when a config file is named:
   * callers load the yaml module (`loadYaml()`) only then, so an agent run
   * without a config file does not carry it.
   */
  parseYaml?: (text: string) => unknown;
}

/** The YAML parser, loaded on demand. */
export async function loadYaml(): Promise<(text: string) => unknown> {
  return (await import('yaml')).parse;
}

/** loadConfig, loading the YAML parser first when a config file is named. */
export async function loadConfigWithFile(sources: ConfigSources, needs: ConfigNeeds = {}): Promise<Readonly<AgentConfig>> {
  const env = sources.env ?? process.env;
  const named = sources.flags.config ?? env.VMPILOT_CONFIG;
  return loadConfig({ ...sources, ...(named ? { parseYaml: await loadYaml() } : {}) }, needs);
}

/** What `loadConfig` demands beyond the schema, e.g. `run` needs a server and a token. */
export interface ConfigNeeds {
  require?: readonly ('server' | 'token')[];
}

/** The commander attribute name of a flag: "--memory-mb" → "memoryMb". */
export function flagAttribute(flag: string): string {
  return flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function show(raw: unknown): string {
  return typeof raw === 'string' ? `"${raw}"` : JSON.stringify(raw);
}

function readConfigFile(file: string, read: (f: string) => string, parseYaml: ((text: string) => unknown) | undefined): Record<string, unknown> {
  if (!parseYaml) throw new VmpilotError('VMP_INTERNAL', 'a config file was named but no YAML parser was given to loadConfig');
  let textValue: string;
  try {
    textValue = read(file);
  } catch (err) {
    throw new VmpilotError('VMP_CONFIG', `config file ${file} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = parseYaml(textValue);
  } catch (err) {
    throw new VmpilotError('VMP_CONFIG', `config file ${file} is not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new VmpilotError('VMP_CONFIG', `config file ${file}: expected a mapping of keys to values`);
  }
  const known = new Set(CONFIG_KEYS.map((k) => k.key as string));
  for (const key of Object.keys(doc)) {
    if (!known.has(key)) {
      throw new VmpilotError('VMP_CONFIG', `config file ${file}: unknown key "${key}"; expected one of ${[...known].join(', ')}`);
    }
  }
  return doc as Record<string, unknown>;
}

/** A value and the rank of the source it came from (0 flag, 1 environment, 2 config file, 3 default). */
interface Picked {
  value: unknown;
  rank: number;
}

function pick(
  spec: KeySpec,
  flags: Record<string, unknown>,
  env: Record<string, string | undefined>,
  file: Record<string, unknown>,
  fileName: string | null,
): Picked {
  const sources: unknown[] = [flags[flagAttribute(spec.flag)], env[spec.env], file[spec.key]];
  const labels = [spec.flag, spec.env, `${spec.key} in config file ${fileName ?? ''}`.trim()];
  for (let i = 0; i < sources.length; i++) {
    const raw = sources[i];
    if (raw === undefined || (i === 1 && raw === '')) continue;
    const parsed = spec.parse(raw);
    if (parsed.ok) return { value: parsed.value, rank: i };
    const code = i === 0 ? 'VMP_USAGE' : 'VMP_CONFIG';
    throw new VmpilotError(code, `${labels[i]} ${show(raw)}: expected ${parsed.expected}`);
  }
  return { value: spec.default, rank: 3 };
}

/** Where the registration token may come from, as the errors say it. */
const TOKEN_SOURCES = '--token-file FILE, VMPILOT_PILOT_TOKEN, VMPILOT_PILOT_TOKEN_FILE, or "token"/"tokenFile" in the config file';

/**
 * The registration token: from the strongest of `token` (VMPILOT_PILOT_TOKEN
 * or the config file) and `tokenFile` (read here). Never from a flag: a
 * command line is visible to every process on the node.
 */
function resolveToken(
  token: Picked,
  tokenFile: Picked,
  cwd: string,
  read: (f: string) => string,
): { token: string | null; tokenFile: string | null } {
  if (token.rank === 0) {
    throw new VmpilotError(
      'VMP_USAGE',
      '--token: a token on the command line is visible to every process on this node (ps, /proc/PID/cmdline); pass it in a file with --token-file FILE, or in the environment as VMPILOT_PILOT_TOKEN',
    );
  }
  if (tokenFile.value === null || token.rank < tokenFile.rank) return { token: token.value as string | null, tokenFile: null };
  if (token.rank === tokenFile.rank && token.value !== null) {
    throw new VmpilotError('VMP_CONFIG', `both a token and a token file were given (${token.rank === 1 ? 'VMPILOT_PILOT_TOKEN and VMPILOT_PILOT_TOKEN_FILE' : '"token" and "tokenFile" in the config file'}); give one`);
  }
  const file = path.resolve(cwd, tokenFile.value as string);
  let text: string;
  try {
    text = read(file);
  } catch (err) {
    throw new VmpilotError('VMP_CONFIG', `token file ${file} cannot be read: ${(err as Error).message}; expected a file holding the registration token`, { cause: err });
  }
  const value = text.trim();
  if (value === '' || /\s/.test(value)) throw new VmpilotError('VMP_CONFIG', `token file ${file}: expected the registration token alone on one line, found ${value === '' ? 'nothing' : 'spaces or several lines'}`);
  return { token: value, tokenFile: file };
}

/** Build, validate and freeze the configuration from its sources. */
export function loadConfig(sources: ConfigSources, needs: ConfigNeeds = {}): Readonly<AgentConfig> {
  const env = sources.env ?? process.env;
  const cwd = sources.cwd ?? process.cwd();
  const configFile = (sources.flags.config as string | undefined) ?? env.VMPILOT_CONFIG ?? null;
  const file = configFile ? readConfigFile(path.resolve(cwd, configFile), sources.readFile ?? ((f) => readFileSync(f, 'utf8')), sources.parseYaml) : {};
  const values: Record<string, unknown> = {};
  const picked: Record<string, Picked> = {};
  for (const spec of CONFIG_KEYS) {
    picked[spec.key] = pick(spec, sources.flags, env, file, configFile);
    values[spec.key] = picked[spec.key]!.value;
  }
  Object.assign(values, resolveToken(picked.token!, picked.tokenFile!, cwd, sources.readFile ?? ((f) => readFileSync(f, 'utf8'))));
  for (const key of needs.require ?? []) {
    if (values[key] === null) {
      const spec = CONFIG_KEYS.find((k) => k.key === key)!;
      if (key === 'token') throw new VmpilotError('VMP_USAGE', `the registration token is required: give ${TOKEN_SOURCES}`);
      throw new VmpilotError('VMP_USAGE', `${spec.flag} is required (or ${spec.env}, or "${key}" in the config file)`);
    }
  }
  const baseEnv: Record<string, string> = {};
  for (const key of PAYLOAD_ENV_KEYS) {
    const v = env[key];
    if (v !== undefined) baseEnv[key] = v;
  }
  baseEnv.PATH ??= '/usr/local/bin:/usr/bin:/bin';
  const batchEnv: Record<string, string> = { PATH: baseEnv.PATH };
  for (const key of BATCH_ENV_KEYS) {
    const v = env[key];
    if (v !== undefined) batchEnv[key] = v;
  }
  const config: AgentConfig = {
    ...(values as Omit<AgentConfig, 'payloadBaseEnv' | 'batchEnv' | 'configFile'>),
    stateDir: path.resolve(cwd, values.stateDir as string),
    configFile: configFile ? path.resolve(cwd, configFile) : null,
    payloadBaseEnv: Object.freeze(baseEnv),
    batchEnv: Object.freeze(batchEnv),
  };
  const spool = mailboxSpoolOf(config.server);
  if (spool !== null && (config.stateDir === spool || config.stateDir.startsWith(`${spool}/`))) {
    // the relay would take it for a mailbox, and the payloads' sandbox hides the spool
    throw new VmpilotError('VMP_USAGE', `--state-dir ${config.stateDir} is inside the mailbox spool ${spool} of --server ${config.server}: give the agent a state directory outside it (e.g. on the node's local disk)`);
  }
  if (typeof config.halt === 'object') Object.freeze(config.halt);
  return Object.freeze(config);
}
