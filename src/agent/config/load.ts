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

function pick(
  spec: KeySpec,
  flags: Record<string, unknown>,
  env: Record<string, string | undefined>,
  file: Record<string, unknown>,
  fileName: string | null,
): unknown {
  const sources: unknown[] = [flags[flagAttribute(spec.flag)], env[spec.env], file[spec.key]];
  const labels = [spec.flag, spec.env, `${spec.key} in config file ${fileName ?? ''}`.trim()];
  for (let i = 0; i < sources.length; i++) {
    const raw = sources[i];
    if (raw === undefined || (i === 1 && raw === '')) continue;
    const parsed = spec.parse(raw);
    if (parsed.ok) return parsed.value;
    const code = i === 0 ? 'VMP_USAGE' : 'VMP_CONFIG';
    throw new VmpilotError(code, `${labels[i]} ${show(raw)}: expected ${parsed.expected}`);
  }
  return spec.default;
}

/** Build, validate and freeze the configuration from its sources. */
export function loadConfig(sources: ConfigSources, needs: ConfigNeeds = {}): Readonly<AgentConfig> {
  const env = sources.env ?? process.env;
  const cwd = sources.cwd ?? process.cwd();
  const configFile = (sources.flags.config as string | undefined) ?? env.VMPILOT_CONFIG ?? null;
  const file = configFile ? readConfigFile(path.resolve(cwd, configFile), sources.readFile ?? ((f) => readFileSync(f, 'utf8')), sources.parseYaml) : {};
  const values: Record<string, unknown> = {};
  for (const spec of CONFIG_KEYS) values[spec.key] = pick(spec, sources.flags, env, file, configFile);
  for (const key of needs.require ?? []) {
    if (values[key] === null) {
      const spec = CONFIG_KEYS.find((k) => k.key === key)!;
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
    ...(values as Omit<AgentConfig, 'payloadBaseEnv' | 'batchEnv'>),
    stateDir: path.resolve(cwd, values.stateDir as string),
    payloadBaseEnv: Object.freeze(baseEnv),
    batchEnv: Object.freeze(batchEnv),
  };
  if (typeof config.halt === 'object') Object.freeze(config.halt);
  return Object.freeze(config);
}
