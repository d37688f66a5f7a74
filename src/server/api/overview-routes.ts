/**
 * The admin routes the dashboard's overview and pilot detail read (admin
 * token): GET /v1/overview (totals that say whether the site is healthy)
 * and GET /v1/pilots/:id/detail (instructions with acknowledgements, the
 * last heartbeat). Both read a few rows whatever the size of the site.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { OverviewGroup, OverviewReply, PilotDetailReply } from '../../protocol/index.js';
import { routes } from '../../protocol/paths.js';
import { idParamsSchema } from '../../protocol/schema-parts.js';
import { VmpilotError } from '../../shared/errors.js';
import type { RunInterval } from '../queue/usage.js';
import type { ApiContext } from './context.js';

/** How far back "the share each group got" looks. */
const SHARE_WINDOW_MS = 3_600_000;
/** The instructions a pilot's detail lists, newest first. */
const DETAIL_INSTRUCTIONS = 50;

/** Register GET /v1/overview and GET /v1/pilots/:id/detail on `app`. */
export function registerOverviewRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { store, clock, auth } = ctx;
  const adminOnly = async (request: FastifyRequest) => {
    await auth.require(request, 'administration', (c) => c.kind === 'admin');
  };

  app.get(routes.overview, { onRequest: adminOnly }, async (): Promise<OverviewReply> => {
    const at = clock.now();
    const [counts, figures, intervals, totals, instances] = await Promise.all([
      store.counts(),
      store.overviewFigures(),
      store.runIntervals(at - SHARE_WINDOW_MS),
      store.accountingByGroup(),
      ctx.instanceCounts ? ctx.instanceCounts() : Promise.resolve([]),
    ]);
    const queues = new Map(figures.queues.map((q) => [q.group, q]));
    const groups = overviewGroups(queues, coreSecByGroup(intervals, at - SHARE_WINDOW_MS, at), ctx.shares, ctx.defaultShare);
    return {
      at,
      payloads: counts.payloadsByState,
      evictedAttempts: totals.reduce((n, t) => n + t.evicted, 0),
      pilots: counts.pilotsByState,
      cores: { total: figures.coresTotal, used: figures.coresUsed, free: Math.max(0, figures.coresTotal - figures.coresUsed) },
      groups,
      instances,
    };
  });

  app.get<{ Params: { pilotId: string } }>(
    routes.pilotDetail,
    { schema: { params: idParamsSchema }, onRequest: adminOnly },
    async (request): Promise<PilotDetailReply> => {
      const pilotId = Number(request.params.pilotId);
      if (!(await store.getPilot(pilotId))) throw new VmpilotError('VMP_NOT_FOUND', `no pilot ${pilotId}`);
      return store.pilotDetail(pilotId, DETAIL_INSTRUCTIONS);
    },
  );
}

/** Core-seconds each group ran between `from` and `to` (runs clipped to the window; open runs run until `to`). Pure. */
export function coreSecByGroup(intervals: readonly RunInterval[], from: number, to: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of intervals) {
    const start = Math.max(from, r.startedAt);
    const end = Math.min(to, r.endedAt ?? to);
    if (end > start) out.set(r.group, (out.get(r.group) ?? 0) + (r.cores * (end - start)) / 1000);
  }
  return out;
}

/**
 * The overview's groups: every group with a share, a queue or usage, its
 * target (its share over all shares of those groups, as the picker
 * compares them) beside the fraction of the last hour's core-seconds it got.
 * Pure.
 */
export function overviewGroups(
  queues: ReadonlyMap<string, { queued: number; oldestSubmittedAt: number }>,
  used: ReadonlyMap<string, number>,
  shares: ReadonlyMap<string, number>,
  defaultShare: number,
): OverviewGroup[] {
  const names = [...new Set([...shares.keys(), ...queues.keys(), ...used.keys()])].sort();
  const shareOf = (g: string) => shares.get(g) ?? defaultShare;
  const totalShare = names.reduce((s, g) => s + shareOf(g), 0);
  const totalUsed = [...used.values()].reduce((s, v) => s + v, 0);
  return names.map((group) => ({
    group,
    queued: queues.get(group)?.queued ?? 0,
    oldestQueuedAt: queues.get(group)?.oldestSubmittedAt ?? null,
    target: totalShare > 0 ? shareOf(group) / totalShare : 0,
    lastHour: totalUsed > 0 ? (used.get(group) ?? 0) / totalUsed : 0,
    lastHourCoreSec: used.get(group) ?? 0,
  }));
}
