/**
 * Routes a pilot calls: register (the registration token, or a director
 * instance's one-time credential, which ties the pilot to its instance and
 * its groups), then heartbeat, match
 * and reports (its own credential, for its own id only). A pilot is not
 * trusted to be well-behaved: registrations are rate-limited (per token and
 * per address) and their labels bounded, its reports must follow its applied
 * seq (report-rules.ts), and its long polls are capped (long-polls.ts).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type {
  Capabilities,
  HeartbeatReply,
  HeartbeatRequest,
  MatchRequest,
  PilotView,
  RegisterReply,
  RegisterRequest,
  ReportsReply,
  ReportsRequest,
} from '../../protocol/index.js';
import { routes } from '../../protocol/paths.js';
import { heartbeatSchema, matchSchema, registerSchema, reportsSchema } from '../../protocol/pilot-schemas.js';
import { idParamsSchema } from '../../protocol/schema-parts.js';
import { VmpilotError } from '../../shared/errors.js';
import { REFUSAL } from '../store/apply-report.js';
import { seqProblem } from '../store/report-rules.js';
import type { ApiContext } from './context.js';
import { SPENT_INSTANCE_CREDENTIAL, bearerToken, newSecret, sha256Hex, type Caller } from './auth.js';
import { matchFor } from './match.js';
import { registrationAddressKey, relayOf } from './relay-auth.js';

type PilotParams = { pilotId: string };

/** Register the pilot routes on `app`. */
export function registerPilotRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { store, clock, auth } = ctx;

  // Checked before the body is read or validated: whoever has no token gets 401, never a 400.
  /** Only the pilot of the route, with its own credential. */
  const ownPilot = async (request: FastifyRequest) => {
    const pilotId = Number((request.params as Partial<PilotParams>).pilotId);
    await auth.require(request, `pilot ${pilotId}`, (c) => c.kind === 'pilot' && c.pilotId === pilotId, true);
  };
  // the token first (no 429 for whoever has none), then the rate, still before the body is read
  // the shared registration token, or a director instance's one-time credential (then the pilot is that instance's)
  const registrars = new WeakMap<FastifyRequest, Caller>();
  const registrar = async (request: FastifyRequest) => {
    const caller = await auth.require(request, 'registration', (c) => c.kind === 'registrar' || c.kind === 'instance');
    limitRegistrations(ctx, request);
    registrars.set(request, caller);
  };
  const pilotOf = (request: FastifyRequest<{ Params: PilotParams }>): number => Number(request.params.pilotId);

  app.post<{ Body: RegisterRequest }>(routes.register, { schema: { body: registerSchema }, onRequest: registrar }, async (request, reply) => {
    const labelBytes = Buffer.byteLength(JSON.stringify(request.body.labels ?? {}));
    if (labelBytes > ctx.limits.labelBytes) {
      throw new VmpilotError('VMP_BAD_REQUEST', `body.labels is ${labelBytes} bytes of JSON; at most ${ctx.limits.labelBytes} in all: keep fewer or shorter labels`);
    }
    checkCapabilities(ctx, request.body.capabilities);
    const credential = newSecret();
    const expiresAt = ctx.credentialTtlSec > 0 ? clock.now() + ctx.credentialTtlSec * 1000 : null;
    const caller = registrars.get(request);
    let pilot: PilotView;
    if (caller?.kind === 'instance') {
      // one transaction: the pilot is the instance's (its groups), and the credential is spent; a second use finds it spent
      const reg = await store.registerInstancePilot(sha256Hex(bearerToken(request) ?? ''), request.body, sha256Hex(credential), clock.now(), expiresAt, relayOf(request));
      if (!reg) {
        ctx.refusals.warn('authentication failed', { ip: request.ip, route: request.routeOptions.url, caller: 'instance', instanceCredential: 'spent meanwhile' });
        throw new VmpilotError('VMP_UNAUTHORIZED', SPENT_INSTANCE_CREDENTIAL);
      }
      pilot = reg.pilot;
    } else {
      pilot = await store.createPilot(request.body, sha256Hex(credential), clock.now(), expiresAt, relayOf(request));
    }
    request.log.info(
      { pilotId: pilot.id, hostname: pilot.hostname, ip: request.ip, ...(pilot.relay ? { relay: pilot.relay } : {}), ...(pilot.instanceId ? { instanceId: pilot.instanceId, groups: pilot.groups } : {}) },
      'pilot registered',
    );
    const body: RegisterReply = {
      pilotId: pilot.id,
      credential,
      heartbeatIntervalSec: ctx.heartbeatIntervalSec,
      matchWaitMaxSec: ctx.matchWaitMaxSec,
      serverTime: clock.now(),
      credentialExpiresAt: expiresAt,
      ...(ctx.leaseSec === undefined ? {} : { leaseSec: ctx.leaseSec }),
      // payload-ended may say the infrastructure stopped a payload: it is queued again (store/endings.ts)
      acceptsEvicted: true,
    };
    return reply.code(201).send(body);
  });

  app.post<{ Params: PilotParams; Body: HeartbeatRequest }>(
    routes.heartbeat,
    { schema: { params: idParamsSchema, body: heartbeatSchema }, onRequest: ownPilot },
    async (request): Promise<HeartbeatReply> => {
      const pilotId = pilotOf(request);
      checkCapabilities(ctx, request.body.capabilities);
      await store.recordHeartbeat(pilotId, request.body, clock.now());
      const reply: HeartbeatReply = { intervalSec: ctx.heartbeatIntervalSec, instructions: await store.pendingInstructions(pilotId) };
      const renewed = await renewal(ctx, pilotId);
      if (renewed) {
        request.log.info({ pilotId, expiresAt: renewed.credentialExpiresAt }, 'credential renewed');
        Object.assign(reply, renewed);
      }
      return reply;
    },
  );

  app.post<{ Params: PilotParams; Body: MatchRequest }>(
    routes.match,
    { schema: { params: idParamsSchema, body: matchSchema }, onRequest: ownPilot },
    async (request, reply) => {
      const pilotId = pilotOf(request);
      const poll = ctx.longPolls.enter(pilotId);
      if (!poll) {
        ctx.refusals.warn('too many match requests open', { ip: request.ip, pilotId, open: ctx.longPolls.size });
        throw new VmpilotError('VMP_RATE_LIMITED', `the server holds ${ctx.longPolls.size} match requests open, its limit; retry later`, { details: { retryAfterSec: 5 } });
      }
      const gone = new AbortController();
      const onClose = () => {
        if (!reply.raw.writableFinished) gone.abort();
      };
      reply.raw.on('close', onClose);
      if (reply.raw.destroyed) gone.abort();
      try {
        const t0 = clock.now();
        const answer = await matchFor(ctx, pilotId, request.body, gone.signal, poll.replaced);
        const outcome = answer === null ? 'gone' : answer.payload ? 'payload' : answer.instructions.length > 0 ? 'instructions' : 'none';
        ctx.metrics.match.observe((clock.now() - t0) / 1000, { outcome });
        if (answer === null) {
          request.log.debug({ pilotId }, 'match client went away');
          return reply;
        }
        return reply.send(answer);
      } finally {
        poll.leave();
        reply.raw.off('close', onClose);
      }
    },
  );

  app.post<{ Params: PilotParams; Body: ReportsRequest }>(
    routes.reports,
    { schema: { params: idParamsSchema, body: reportsSchema }, onRequest: ownPilot },
    async (request): Promise<ReportsReply> => {
      const pilotId = pilotOf(request);
      const refused: ReportsReply['refused'] = [];
      let requeued = false;
      // a gap or a jump would make every later report of this pilot a "duplicate": refuse it whole
      const appliedBefore = await store.appliedSeq(pilotId);
      const problem = seqProblem(appliedBefore, request.body.reports.map((r) => r.seq));
      if (problem) throw outOfOrder(ctx, request, pilotId, appliedBefore, problem);
      for (const report of request.body.reports) {
        const outcome = await store.applyReport(pilotId, report, clock.now());
        if (outcome.kind === 'out-of-order') {
          // another request of this pilot got in between (an honest agent sends one at a time)
          if (requeued) ctx.notifier.wakeAll();
          throw outOfOrder(ctx, request, pilotId, outcome.appliedSeq, outcome.message);
        }
        if (outcome.kind === 'refused') {
          refused.push({ seq: report.seq, code: outcome.code, message: outcome.message });
          const fields = { pilotId, seq: report.seq, type: report.type, code: outcome.code, ip: request.ip };
          // at a rate: one request may carry a thousand refused reports
          if (outcome.code === REFUSAL.seqConflict) ctx.refusals.warn('report seq conflict', { ...fields, suspicious: true });
          else ctx.refusals.warn('report refused', { ...fields, reason: outcome.message });
        } else if (outcome.kind === 'applied' && (report.type === 'shutdown' || (report.type === 'payload-ended' && report.evicted))) {
          requeued = true;
        }
      }
      // a halted pilot's unstarted payloads, or an evicted one, went back to the queue
      if (requeued) ctx.notifier.wakeAll();
      return {
        appliedSeq: await store.appliedSeq(pilotId),
        refused,
        instructions: await store.pendingInstructions(pilotId),
      };
    },
  );
}


/**
 * The refusal of reports out of order: logged (at a rate) as suspicious —
 * an honest agent never sends one — and answered 409 VMP_REPORT_SEQ with the
 * applied seq, changing nothing.
 */
function outOfOrder(ctx: ApiContext, request: FastifyRequest, pilotId: number, appliedSeq: number, message: string): VmpilotError {
  const seqs = (request.body as ReportsRequest).reports.map((r) => r.seq);
  ctx.refusals.warn('reports out of order', { pilotId, appliedSeq, first: seqs[0], count: seqs.length, ip: request.ip, suspicious: true });
  return new VmpilotError('VMP_REPORT_SEQ', message, { details: { appliedSeq } });
}

/**
 * Refuse capabilities larger than `limits.capabilityBytes` in all (each
 * field is bounded by the schema, their sum here): VMP_BAD_REQUEST naming
 * the field, its size and the limit; nothing is stored.
 */
function checkCapabilities(ctx: ApiContext, capabilities: Capabilities | undefined): void {
  if (capabilities === undefined) return;
  const bytes = Buffer.byteLength(JSON.stringify(capabilities));
  if (bytes <= ctx.limits.capabilityBytes) return;
  throw new VmpilotError(
    'VMP_BAD_REQUEST',
    `body.capabilities is ${bytes} bytes of JSON; at most ${ctx.limits.capabilityBytes} in all: declare fewer or shorter tags (--tag), or fewer GPUs (--gpus), or raise limits.capabilityBytes on the server`,
  );
}

/**
 * Count a registration against its token's and its address's limits; throw
 * VMP_RATE_LIMITED (429, with Retry-After) when either is used up.
 */
function limitRegistrations(ctx: ApiContext, request: FastifyRequest): void {
  const token = bearerToken(request) ?? '';
  const byToken = ctx.registrations.byToken.take(sha256Hex(token));
  // behind a relay the node's own address, as the relay saw it, not the relay's (relay-auth.ts)
  const address = registrationAddressKey(request.ip, relayOf(request), request.headers['x-forwarded-for']);
  const byAddress = !byToken.ok ? byToken : address === null ? ({ ok: true } as const) : ctx.registrations.byAddress.take(address);
  const refusal = !byToken.ok ? byToken : !byAddress.ok ? byAddress : null;
  if (!refusal || refusal.ok) return;
  const which = !byToken.ok ? 'this registration token' : `address ${address}`;
  ctx.refusals.warn('registration rate limited', { ip: request.ip, by: !byToken.ok ? 'token' : 'address', retryAfterSec: refusal.retryAfterSec });
  throw new VmpilotError('VMP_RATE_LIMITED', `too many registrations from ${which}; retry in ${refusal.retryAfterSec} s`, {
    details: { retryAfterSec: refusal.retryAfterSec },
  });
}

/**
 * A new credential for the pilot when its current one has used up half its
 * life (so a heartbeat or two can be lost and it still arrives in time), or
 * null. The old credential stays valid until its own expiry.
 */
async function renewal(ctx: ApiContext, pilotId: number): Promise<{ credential: string; credentialExpiresAt: number } | null> {
  if (ctx.credentialTtlSec <= 0) return null;
  const now = ctx.clock.now();
  const expiresAt = await ctx.store.credentialExpiresAt(pilotId);
  if (expiresAt !== null && expiresAt - now > (ctx.credentialTtlSec * 1000) / 2) return null;
  const credential = newSecret();
  const credentialExpiresAt = now + ctx.credentialTtlSec * 1000;
  await ctx.store.renewCredential(pilotId, sha256Hex(credential), credentialExpiresAt);
  return { credential, credentialExpiresAt };
}
