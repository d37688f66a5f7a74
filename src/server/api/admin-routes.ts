/**
 * Routes an administrator calls, with the admin token: submit (one or many),
 * list and kill payloads, list pilots and their history, send a pilot an
 * instruction, accounting, usage over time, and /metrics.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type {
  AccountingEntry,
  KillReply,
  KillRequest,
  ResubmitReply,
  SubmitBatchReply,
  SubmitBatchRequest,
  UsageTimeline,
  InstructionReply,
  InstructionRequest,
  InstructionView,
  PayloadHistoryEntry,
  PayloadState,
  PayloadView,
  PilotState,
  PilotView,
  SubmitReply,
  SubmitRequest,
} from '../../protocol/index.js';
import { routes } from '../../protocol/paths.js';
import {
  accountingQuerySchema,
  instructionSchema,
  killSchema,
  payloadsQuerySchema,
  pilotsQuerySchema,
  submitBatchSchema,
  submitSchema,
  usageQuerySchema,
} from '../../protocol/admin-schemas.js';
import { idParamsSchema } from '../../protocol/schema-parts.js';
import { coresTimeline } from '../queue/usage.js';
import type { AccountingFilter, AccountingTotal } from '../store/store.js';
import { VmpilotError } from '../../shared/errors.js';
import { PAYLOAD_SORT_KEYS, PILOT_SORT_KEYS, parseSort, type ListSort } from '../store/list-order.js';
import type { PayloadFilter } from '../store/store.js';
import type { ApiContext } from './context.js';
import { TOTAL_HEADER, nextLink, pageOf, type Page } from './paging.js';
import { normaliseSubmit, withWaiting } from './requirements.js';

interface PayloadsQuery {
  state?: PayloadState;
  group?: string;
  pilot?: string;
  name?: string;
  order?: 'newest' | 'oldest';
  sort?: string;
  limit?: string;
  cursor?: string;
  offset?: string;
}

interface PilotsQuery {
  state?: string;
  sort?: string;
  limit?: string;
  cursor?: string;
  offset?: string;
}

/** The header that tells how many rows match a listing's filters in all (the dashboard's "1-50 of 10,000"). */

/**
 * The sort a listing's query asks for among `keys` (`example` shows one), or
 * undefined when it asks none, with the page it reads: a sorted listing is
 * paged by offset (its Link header too), since a cursor names an id, which
 * orders only by id. Throws VMP_BAD_REQUEST naming the parameter when the
 * sort does not fit, or with `conflict` (another parameter given beside a
 * valid sort) when there is one.
 */
function sortedPage<K extends string>(
  q: { sort?: string; cursor?: string; limit?: string; offset?: string },
  keys: readonly K[],
  example: string,
  conflict: string | null = null,
): { sort: ListSort<K> | undefined; page: Page } {
  const page = pageOf(q);
  if (q.sort === undefined) return { sort: undefined, page };
  const sort = parseSort(keys, q.sort);
  if (!sort) throw new VmpilotError('VMP_BAD_REQUEST', `query.sort "${q.sort}" is not one of ${keys.join(', ')} (a leading - sorts from the largest down, e.g. sort=${example})`);
  if (conflict) throw new VmpilotError('VMP_BAD_REQUEST', conflict);
  if (q.cursor !== undefined) throw new VmpilotError('VMP_BAD_REQUEST', 'query.cursor pages a listing by id: with query.sort, page by query.offset (the Link header does)');
  return { sort, page: { ...page, offset: page.offset ?? 0 } };
}

/** Register the admin routes on `app`. */
export function registerAdminRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { store, clock, auth, notifier } = ctx;
  // checked before the body is read or validated: no 400 for whoever has no token
  const adminOnly = async (request: FastifyRequest) => {
    await auth.require(request, 'administration', (c) => c.kind === 'admin');
  };

  app.post<{ Body: SubmitRequest }>(
    routes.payloads,
    { schema: { body: submitSchema }, onRequest: adminOnly },
    async (request, reply) => {
      checkCores(request.body, 'body');
      const payload = await store.submitPayload(normaliseSubmit(request.body, 'body'), clock.now());
      request.log.info({ payloadId: payload.id, name: payload.name, group: payload.group }, 'payload submitted');
      notifier.wakeAll();
      ctx.director?.poke(); // the director looks at the queue now, not at its next cycle
      const body: SubmitReply = { id: payload.id };
      return reply.code(201).send(body);
    },
  );

  app.get<{ Querystring: PayloadsQuery }>(
    routes.payloads,
    { schema: { querystring: payloadsQuerySchema }, onRequest: adminOnly },
    async (request, reply): Promise<PayloadView[]> => {
      const q = request.query;
      const both = q.order === undefined ? null : 'query.sort and query.order cannot be given together: sort=id is oldest first, sort=-id newest first';
      const { sort, page } = sortedPage(q, PAYLOAD_SORT_KEYS, '-started', both);
      const filter: PayloadFilter = { limit: page.limit };
      if (sort) filter.sort = sort;
      if (page.before !== null) filter.before = page.before;
      if (page.offset !== null) filter.offset = page.offset;
      if (q.order === 'oldest') filter.oldestFirst = true;
      if (q.state) filter.state = q.state;
      if (q.group) filter.group = q.group;
      if (q.pilot) filter.pilotId = Number(q.pilot);
      if (q.name) filter.nameContains = q.name;
      const rows = await store.listPayloads(filter);
      const link = nextLink(routes.payloads, { ...q }, page, rows);
      if (link) void reply.header('link', link);
      void reply.header(TOTAL_HEADER, String(await store.countPayloads(filter)));
      return rows;
    },
  );

  app.get<{ Params: { payloadId: string } }>(
    routes.payload,
    { schema: { params: idParamsSchema }, onRequest: adminOnly },
    async (request): Promise<PayloadView> => {
      const payload = await store.getPayload(Number(request.params.payloadId));
      if (!payload) throw new VmpilotError('VMP_NOT_FOUND', `no payload ${request.params.payloadId}`);
      return withWaiting(store, payload, ctx.isolationPolicy);
    },
  );

  app.get<{ Querystring: PilotsQuery }>(
    routes.pilots,
    { schema: { querystring: pilotsQuerySchema }, onRequest: adminOnly },
    async (request, reply): Promise<PilotView[]> => {
      const q = request.query;
      const { sort, page } = sortedPage(q, PILOT_SORT_KEYS, '-heartbeat');
      const filter = {
        ...(sort ? { sort } : {}),
        limit: page.limit,
        ...(page.before !== null ? { before: page.before } : {}),
        ...(page.offset !== null ? { offset: page.offset } : {}),
        ...(q.state ? { states: q.state.split(',') as PilotState[] } : {}),
      };
      const rows = await store.listPilots(filter);
      const link = nextLink(routes.pilots, { ...q }, page, rows);
      if (link) void reply.header('link', link);
      void reply.header(TOTAL_HEADER, String(await store.countPilots(filter)));
      return rows;
    },
  );

  app.get<{ Params: { pilotId: string } }>(
    routes.pilot,
    { schema: { params: idParamsSchema }, onRequest: adminOnly },
    async (request): Promise<PilotView> => {
      const pilot = await store.getPilot(Number(request.params.pilotId));
      if (!pilot) throw new VmpilotError('VMP_NOT_FOUND', `no pilot ${request.params.pilotId}`);
      // the one pilot comes with its last heartbeat (load, memory, disk, MJF), as its payload comes with its output
      return { ...pilot, lastHeartbeat: await store.lastHeartbeat(pilot.id) };
    },
  );

  app.get<{ Params: { pilotId: string } }>(
    routes.instructions,
    { schema: { params: idParamsSchema }, onRequest: adminOnly },
    async (request): Promise<InstructionView[]> => {
      const pilotId = Number(request.params.pilotId);
      if (!(await store.getPilot(pilotId))) throw new VmpilotError('VMP_NOT_FOUND', `no pilot ${pilotId}`);
      return store.instructionsOf(pilotId);
    },
  );

  app.post<{ Params: { pilotId: string }; Body: InstructionRequest }>(
    routes.instructions,
    { schema: { params: idParamsSchema, body: instructionSchema }, onRequest: adminOnly },
    async (request, reply) => {
      const pilotId = Number(request.params.pilotId);
      const pilot = await store.getPilot(pilotId);
      if (!pilot) throw new VmpilotError('VMP_NOT_FOUND', `no pilot ${pilotId}`);
      if (pilot.state === 'halted') throw new VmpilotError('VMP_CONFLICT', `pilot ${pilotId} has halted`);
      // a drain is kept until the halt: a second one while the first holds sends nothing (as a second kill)
      if (request.body.type === 'drain') {
        const { instruction, existing } = await store.drainOnce(pilotId, request.body, clock.now());
        request.log.info({ pilotId, instruction, existing }, existing ? 'drain already sent' : 'instruction added');
        if (existing) return reply.code(200).send({ instruction, existing: true } satisfies InstructionReply);
        notifier.wakePilot(pilotId);
        return reply.code(201).send({ instruction } satisfies InstructionReply);
      }
      const instruction = await store.addInstruction(pilotId, request.body, clock.now());
      request.log.info({ pilotId, instruction }, 'instruction added');
      notifier.wakePilot(pilotId);
      const body: InstructionReply = { instruction };
      return reply.code(201).send(body);
    },
  );

  app.post<{ Body: SubmitBatchRequest }>(
    routes.payloadsBatch,
    { schema: { body: submitBatchSchema }, onRequest: adminOnly },
    async (request, reply) => {
      request.body.payloads.forEach((p, i) => checkCores(p, `body.payloads[${i}]`));
      const payloads = request.body.payloads.map((p, i) => normaliseSubmit(p, `body.payloads[${i}]`));
      const ids = await store.submitPayloads(payloads, clock.now());
      request.log.info({ count: ids.length, first: ids[0], last: ids[ids.length - 1] }, 'payloads submitted');
      notifier.wakeAll();
      ctx.director?.poke();
      const body: SubmitBatchReply = { ids };
      return reply.code(201).send(body);
    },
  );

  app.post<{ Params: { payloadId: string }; Body: KillRequest | undefined }>(
    routes.payloadKill,
    {
      schema: { params: idParamsSchema, body: killSchema },
      onRequest: adminOnly,
      // the body is optional: none means no reason given
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request): Promise<KillReply> => {
      const payloadId = Number(request.params.payloadId);
      const reason = request.body?.reason ?? 'killed by an administrator';
      const instruction = await store.killPayload(payloadId, reason, clock.now());
      if (instruction) {
        const payload = await store.getPayload(payloadId);
        if (payload?.pilotId) notifier.wakePilot(payload.pilotId);
      }
      const payload = await store.getPayload(payloadId);
      request.log.info({ payloadId, instruction }, instruction ? 'payload kill sent' : 'payload cancelled');
      return { payloadId, state: payload?.state ?? 'cancelled', instruction };
    },
  );

  app.post<{ Params: { payloadId: string } }>(
    routes.payloadResubmit,
    { schema: { params: idParamsSchema }, onRequest: adminOnly },
    async (request, reply) => {
      const payloadId = Number(request.params.payloadId);
      const done = await store.resubmitPayload(payloadId, clock.now());
      if (!done) throw new VmpilotError('VMP_NOT_FOUND', `no payload ${payloadId}`);
      if (done.kind === 'not-ended') {
        throw new VmpilotError('VMP_CONFLICT', `payload ${payloadId} is ${done.state}: only a payload that ended (done, failed or cancelled) can be resubmitted; wait for its end, or kill it first`);
      }
      request.log.info({ payloadId: done.id, resubmitOf: payloadId }, 'payload resubmitted');
      notifier.wakeAll();
      ctx.director?.poke();
      const body: ResubmitReply = { id: done.id, resubmitOf: payloadId };
      return reply.code(201).send(body);
    },
  );

  app.get<{ Params: { payloadId: string } }>(
    routes.payloadHistory,
    { schema: { params: idParamsSchema }, onRequest: adminOnly },
    async (request): Promise<PayloadHistoryEntry[]> => {
      const payloadId = Number(request.params.payloadId);
      if (!(await store.getPayload(payloadId))) throw new VmpilotError('VMP_NOT_FOUND', `no payload ${payloadId}`);
      return store.payloadHistory(payloadId);
    },
  );

  app.get<{ Params: { pilotId: string } }>(
    routes.pilotHistory,
    { schema: { params: idParamsSchema }, onRequest: adminOnly },
    async (request) => {
      const pilotId = Number(request.params.pilotId);
      if (!(await store.getPilot(pilotId))) throw new VmpilotError('VMP_NOT_FOUND', `no pilot ${pilotId}`);
      return store.pilotHistory(pilotId);
    },
  );

  app.get<{ Querystring: { from?: string; to?: string; group?: string; pilot?: string; by?: 'group' } }>(
    routes.accounting,
    { schema: { querystring: accountingQuerySchema }, onRequest: adminOnly },
    async (request): Promise<AccountingEntry[] | AccountingTotal[]> => {
      const q = request.query;
      if (q.by === 'group') {
        const other = (['from', 'to', 'group', 'pilot'] as const).find((k) => q[k] !== undefined);
        if (other) throw new VmpilotError('VMP_BAD_REQUEST', `query.by=group gives totals since the start; it takes no query.${other}`);
        return store.accountingByGroup();
      }
      const filter: AccountingFilter = {};
      if (q.from) filter.from = q.from;
      if (q.to) filter.to = q.to;
      if (q.group) filter.group = q.group;
      if (q.pilot) filter.pilotId = Number(q.pilot);
      return store.accounting(filter);
    },
  );

  app.get<{ Querystring: { minutes?: string; stepSec?: string } }>(
    routes.usage,
    { schema: { querystring: usageQuerySchema }, onRequest: adminOnly },
    async (request): Promise<UsageTimeline> => {
      const minutes = Number(request.query.minutes ?? 60);
      const stepSec = Number(request.query.stepSec ?? Math.max(10, Math.round((minutes * 60) / 60)));
      if ((minutes * 60) / stepSec > 2000) throw new VmpilotError('VMP_BAD_REQUEST', 'query.stepSec is too small: at most 2000 steps');
      const to = clock.now();
      const from = to - minutes * 60_000;
      return coresTimeline(await store.runIntervals(from), from, to, stepSec);
    },
  );

  app.get(routes.metrics, { onRequest: adminOnly }, async (_request, reply) => {
    const text = ctx.metrics.render(await store.counts(), ctx.longPolls.size);
    return reply.type('text/plain; version=0.0.4; charset=utf-8').send(text);
  });
}

/** Refuse a core range whose MIN is above its MAX (as `submit --cores` does), naming the field at `where`. */
function checkCores(r: SubmitRequest, where: string): void {
  if (r.cores && r.cores.min > r.cores.max) {
    throw new VmpilotError('VMP_BAD_REQUEST', `${where}.cores.min (${r.cores.min}) must not be larger than ${where}.cores.max (${r.cores.max})`);
  }
}
