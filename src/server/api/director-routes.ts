/**
 * The director's admin routes (admin token only; docs/protocol.md
 * "Director"): the endpoints with their live counts and backoff, disabling
 * and enabling one (kept across restarts), instances and their history,
 * starting and stopping instances by hand, the last cycle's record, and
 * what the instances cost per group (accounting/instances).
 * With no endpoints configured the listings are empty and every POST is a
 * VMP_CONFLICT saying so.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  INSTANCE_STATE_NAMES,
  type CycleView,
  type DirectorStatusReply,
  type InstanceCostEntry,
  type EndpointSwitchReply,
  type EndpointView,
  type InstanceDetailReply,
  type InstanceStateName,
  type InstanceView,
  type StartInstancesReply,
  type StartInstancesRequest,
  type StopInstancesReply,
  type StopInstancesRequest,
} from '../../protocol/index.js';
import { endpointParamsSchema, instanceParamsSchema, instancesQuerySchema, startInstancesSchema, stopInstancesSchema } from '../../protocol/admin-schemas.js';
import { routes } from '../../protocol/paths.js';
import { VmpilotError } from '../../shared/errors.js';
import type { Director } from '../director/loop.js';
import type { InstanceRecord } from '../director/ports.js';
import type { InstanceFilter } from '../store/store.js';
import type { ApiContext } from './context.js';
import { endpointView, instanceCosts, instanceView } from './director-views.js';
import { TOTAL_HEADER, nextLink, pageOf } from './paging.js';

interface InstancesQuery {
  state?: string | string[];
  endpoint?: string;
  limit?: string;
  cursor?: string;
  offset?: string;
}

/** The states a `state` filter names (repeated or comma-separated); VMP_BAD_REQUEST naming the valid ones. Pure. */
export function instanceStatesOf(state: string | readonly string[] | undefined): InstanceStateName[] | undefined {
  if (state === undefined) return undefined;
  const list = (typeof state === 'string' ? [state] : state).flatMap((s) => s.split(',')).map((s) => s.trim());
  const bad = list.find((s) => !(INSTANCE_STATE_NAMES as readonly string[]).includes(s));
  if (bad !== undefined) throw new VmpilotError('VMP_BAD_REQUEST', `query.state "${bad}" is not an instance state (${INSTANCE_STATE_NAMES.join(', ')})`);
  return [...new Set(list)] as InstanceStateName[];
}

/** Register the director's routes on `app`. */
export function registerDirectorRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { store, clock, auth, notifier } = ctx;
  const endpoints = ctx.endpoints ?? [];
  const byName = new Map(endpoints.map((e) => [e.name, e]));
  const director = ctx.director ?? null;
  const adminOnly = async (request: FastifyRequest) => {
    await auth.require(request, 'administration', (c) => c.kind === 'admin');
  };
  /** The director, or VMP_CONFLICT when the server has none. */
  const needDirector = (): Director => {
    if (endpoints.length === 0 || !director) throw new VmpilotError('VMP_CONFLICT', 'no endpoints are configured in serve --config: add an endpoints: section (docs/director.md) and restart the server');
    return director;
  };
  const endpointNamed = (name: string) => {
    needDirector();
    const ep = byName.get(name);
    if (!ep) throw new VmpilotError('VMP_NOT_FOUND', `no endpoint "${name}"; configured: ${[...byName.keys()].join(', ')}`);
    return ep;
  };

  app.get(routes.endpoints, { onRequest: adminOnly }, async (): Promise<EndpointView[]> => {
    if (endpoints.length === 0) return [];
    const [disabled, live, memory] = [await store.disabledEndpoints(), await store.liveInstances(), await store.failureMemory()];
    const now = clock.now();
    return endpoints.map((ep) => endpointView(ep, disabled, live, memory, now));
  });

  const switchRoute = (route: string, disable: boolean) =>
    app.post<{ Params: { name: string } }>(route, { schema: { params: endpointParamsSchema }, onRequest: adminOnly }, async (request): Promise<EndpointSwitchReply> => {
      const ep = endpointNamed(request.params.name);
      await store.setEndpointDisabled(ep.name, disable, clock.now());
      request.log.info({ endpoint: ep.name }, disable ? 'endpoint disabled' : 'endpoint enabled');
      needDirector().poke();
      return { name: ep.name, enabled: ep.enabled && !disable, disabledByOperator: disable };
    });
  switchRoute(routes.endpointDisable, true);
  switchRoute(routes.endpointEnable, false);

  app.get<{ Querystring: InstancesQuery }>(routes.instances, { schema: { querystring: instancesQuerySchema }, onRequest: adminOnly }, async (request, reply): Promise<InstanceView[]> => {
    const q = request.query;
    const states = instanceStatesOf(q.state);
    const page = pageOf(q);
    if (endpoints.length === 0) {
      void reply.header(TOTAL_HEADER, '0');
      return [];
    }
    const filter: InstanceFilter = {
      limit: page.limit,
      ...(states ? { states } : {}),
      ...(q.endpoint ? { endpoint: q.endpoint } : {}),
      ...(page.before !== null ? { before: page.before } : {}),
      ...(page.offset !== null ? { offset: page.offset } : {}),
    };
    const rows = await store.listInstances(filter);
    const link = nextLink(routes.instances, { endpoint: q.endpoint, ...(states ? { state: states.join(',') } : {}) }, page, rows);
    if (link) void reply.header('link', link);
    // the total the page is part of (the dashboard's "1-50 of N")
    void reply.header(TOTAL_HEADER, String(await store.countInstances(filter)));
    const now = clock.now();
    return rows.map((i) => instanceView(i, now));
  });

  app.get(routes.accountingInstances, { onRequest: adminOnly }, async (): Promise<InstanceCostEntry[]> => {
    // every instance, deleted ones included, read a page at a time (newest first) and summed here
    const now = clock.now();
    const all: InstanceRecord[] = [];
    for (let before: number | undefined; ; ) {
      const page = await store.listInstances({ limit: 1000, ...(before === undefined ? {} : { before }) });
      all.push(...page);
      if (page.length < 1000) break;
      before = page.at(-1)!.id;
    }
    return instanceCosts(all, now);
  });

  app.get<{ Params: { instanceId: string } }>(routes.instance, { schema: { params: instanceParamsSchema }, onRequest: adminOnly }, async (request): Promise<InstanceDetailReply> => {
    const id = Number(request.params.instanceId);
    const i = await store.getInstance(id);
    if (!i) throw new VmpilotError('VMP_NOT_FOUND', `no instance ${id}`);
    const pilot = i.pilotId === null ? null : await store.getPilot(i.pilotId);
    return { ...instanceView(i, clock.now()), history: await store.instanceHistory(id), pilot: pilot ? { id: pilot.id, state: pilot.state } : null };
  });

  app.post<{ Body: StartInstancesRequest }>(routes.instances, { schema: { body: startInstancesSchema }, onRequest: adminOnly }, async (request, reply) => {
    const d = needDirector();
    const b = request.body;
    // refused past a limit, disabled, or an unknown endpoint or shape: the director's reason, with nothing recorded
    const made = await d.startByHand(b.endpoint, { ...(b.shape === undefined ? {} : { shape: b.shape }), ...(b.count === undefined ? {} : { count: b.count }) });
    request.log.info({ endpoint: b.endpoint, instances: made.map((i) => i.id) }, 'instances started by hand');
    const now = clock.now();
    const body: StartInstancesReply = { instances: made.map((i) => instanceView(i, now)) };
    return reply.code(201).send(body);
  });

  app.post<{ Body: StopInstancesRequest }>(routes.instancesStop, { schema: { body: stopInstancesSchema }, onRequest: adminOnly }, async (request): Promise<StopInstancesReply> => {
    const { results, drained } = await needDirector().stopByHand(request.body.ids);
    for (const pilotId of drained) notifier.wakePilot(pilotId); // a pilot in a long poll hears its drain now
    return { results };
  });

  app.get(routes.director, { onRequest: adminOnly }, async (): Promise<DirectorStatusReply> => {
    if (endpoints.length === 0 || !director) return { directorId: null, running: false, everySec: null, endpoints: [], lastCycle: null };
    const lastCycle: CycleView | null = await store.lastCycle();
    return { directorId: director.directorId, running: director.runs, everySec: director.everyMs / 1000, endpoints: endpoints.map((e) => e.name), lastCycle, standby: director.standby };
  });
}
