/**
 * The director's admin commands: endpoints, endpoint disable|enable,
 * instances (list, start, stop), instance ID and director status. Each
 * calls the server through AdminClient and prints a table or lines
 * (director-format.ts), or with `--json` exactly what the API returned.
 */
import {
  INSTANCE_STATE_NAMES,
  type DirectorStatusReply,
  type EndpointSwitchReply,
  type EndpointView,
  type InstanceDetailReply,
  type InstanceView,
  type StartInstancesReply,
  type StartInstancesRequest,
  type StopInstancesReply,
} from '../../protocol/index.js';
import { paths } from '../../protocol/paths.js';
import { systemClock } from '../../shared/clock.js';
import { VmpilotError } from '../../shared/errors.js';
import { usageError } from '../run-main.js';
import { AdminClient, type ClientOptions } from './client.js';
import { intOption, listing } from './commands.js';
import { directorStatusText, endpointTable, instanceDetail, instanceTable, startText, stopText, switchText } from './director-format.js';
import { visibleJson } from './visible.js';

type Out = (text: string) => void;
const stdout: Out = (text) => process.stdout.write(`${text}\n`);
type Json = { json?: boolean };

/** `endpoints`: the configured endpoints with live counts, limits, groups and backoff. */
export async function endpoints(o: ClientOptions & Json, out: Out = stdout): Promise<void> {
  const list = await new AdminClient(o).get<EndpointView[]>(paths.endpoints);
  out(o.json ? visibleJson(list) : endpointTable(list, systemClock.now()));
}

/** `endpoint disable NAME` / `endpoint enable NAME` (kept across restarts). */
export async function endpointSwitch(name: string, disable: boolean, o: ClientOptions & Json, out: Out = stdout): Promise<void> {
  if (!/^[a-z][a-z0-9-]{0,23}$/.test(name)) throw usageError(`NAME "${name}" is not an endpoint name (a-z, 0-9 and -, up to 24, starting with a letter)`);
  const r = await new AdminClient(o).post<EndpointSwitchReply>(disable ? paths.endpointDisable(name) : paths.endpointEnable(name), {});
  out(o.json ? visibleJson(r) : switchText(r));
}

/** The states `--state` names (comma-separated); a usage error naming the valid ones. Pure. */
export function instanceStatesOption(value: string): string {
  const bad = value.split(',').find((s) => !(INSTANCE_STATE_NAMES as readonly string[]).includes(s));
  if (bad !== undefined) throw usageError(`--state "${value}": "${bad}" is not an instance state (${INSTANCE_STATE_NAMES.join(', ')})`);
  return value;
}

/** Options of `instances`. */
export interface InstancesOptions extends ClientOptions, Json {
  state?: string;
  endpoint?: string;
  limit?: string;
}

/** `instances`: a table of instances (oldest first; --limit N: the newest N), or their JSON array. */
export async function instances(o: InstancesOptions, out: Out = stdout): Promise<void> {
  const q = new URLSearchParams();
  if (o.state !== undefined) q.set('state', instanceStatesOption(o.state));
  if (o.endpoint !== undefined) q.set('endpoint', o.endpoint);
  const max = o.limit === undefined ? Infinity : intOption('--limit', o.limit, 1, Number.MAX_SAFE_INTEGER);
  const list = await listing<InstanceView>(new AdminClient(o), paths.instances, q, max);
  out(o.json ? visibleJson(list) : list.length === 0 ? 'no instances' : instanceTable(list, systemClock.now()));
}

/** `instance ID`: one instance with its history, pilot and cost so far. */
export async function instance(id: string, o: ClientOptions & Json, out: Out = stdout): Promise<void> {
  const n = intOption('ID', id, 1, Number.MAX_SAFE_INTEGER);
  const i = await new AdminClient(o).get<InstanceDetailReply>(paths.instance(n));
  out(o.json ? visibleJson(i) : instanceDetail(i));
}

/** The body of `instances start`; usage errors naming the flag. Pure. */
export function startRequest(o: { endpoint?: string; shape?: string; count?: string }): StartInstancesRequest {
  if (o.endpoint === undefined) throw usageError('--endpoint is required', 'e.g. instances start --endpoint laptop --count 2');
  const body: StartInstancesRequest = { endpoint: o.endpoint };
  if (o.shape !== undefined) body.shape = o.shape;
  if (o.count !== undefined) body.count = intOption('--count', o.count, 1, 1000);
  return body;
}

/** `instances start --endpoint E [--shape S] [--count N]`: whatever the demand; refused past a limit with the reason. */
export async function instancesStart(o: ClientOptions & Json & { endpoint?: string; shape?: string; count?: string }, out: Out = stdout): Promise<void> {
  const r = await new AdminClient(o).post<StartInstancesReply>(paths.instances, startRequest(o));
  out(o.json ? visibleJson(r) : startText(r));
}

/** `instances stop ID…`: drain, then discard. */
export async function instancesStop(ids: string[], o: ClientOptions & Json, out: Out = stdout): Promise<void> {
  if (ids.length === 0) throw usageError('no instance to stop', 'give their ids, e.g. instances stop 4 7');
  const list = ids.map((id) => intOption('ID', id, 1, Number.MAX_SAFE_INTEGER));
  const r = await new AdminClient(o).post<StopInstancesReply>(paths.instancesStop, { ids: list });
  out(o.json ? visibleJson(r) : stopText(r));
  // the others were handled as printed; an id that names nothing is still an error of the command
  const unknown = r.results.filter((x) => x.outcome === 'unknown').map((x) => x.id);
  if (unknown.length > 0) throw new VmpilotError('VMP_NOT_FOUND', `no instance ${unknown.join(', ')}`);
}

/** `director status`: the last cycle per endpoint (demand seen, supply counted, started, why not more) and per start (its offer, price, and the losers). */
export async function directorStatus(o: ClientOptions & Json, out: Out = stdout): Promise<void> {
  const s = await new AdminClient(o).get<DirectorStatusReply>(paths.director);
  out(o.json ? visibleJson(s) : directorStatusText(s, systemClock.now()));
}
