/**
 * Routes an administrator calls, with the admin token: submit and list
 * payloads, list pilots, send a pilot an instruction.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type {
  InstructionReply,
  InstructionRequest,
  PayloadState,
  PayloadView,
  PilotView,
  SubmitReply,
  SubmitRequest,
} from '../../protocol/index.js';
import { routes } from '../../protocol/paths.js';
import { idParamsSchema, instructionSchema, payloadsQuerySchema, submitSchema } from '../../protocol/schemas.js';
import { VmpilotError } from '../../shared/errors.js';
import type { PayloadFilter } from '../store/store.js';
import type { ApiContext } from './app.js';

interface PayloadsQuery {
  state?: PayloadState;
  group?: string;
  pilot?: string;
  limit?: string;
}

/** Register the admin routes on `app`. */
export function registerAdminRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { store, clock, auth, waiters } = ctx;
  // checked before the body is read or validated: no 400 for whoever has no token
  const adminOnly = async (request: FastifyRequest) => {
    await auth.require(request, 'administration', (c) => c.kind === 'admin');
  };

  app.post<{ Body: SubmitRequest }>(
    routes.payloads,
    { schema: { body: submitSchema }, onRequest: adminOnly },
    async (request, reply) => {
      const payload = await store.submitPayload(request.body, clock.now());
      request.log.info({ payloadId: payload.id, name: payload.name, group: payload.group }, 'payload submitted');
      waiters.wakeAll();
      const body: SubmitReply = { id: payload.id };
      return reply.code(201).send(body);
    },
  );

  app.get<{ Querystring: PayloadsQuery }>(
    routes.payloads,
    { schema: { querystring: payloadsQuerySchema }, onRequest: adminOnly },
    async (request): Promise<PayloadView[]> => {
      const q = request.query;
      const filter: PayloadFilter = {};
      if (q.state) filter.state = q.state;
      if (q.group) filter.group = q.group;
      if (q.pilot) filter.pilotId = Number(q.pilot);
      if (q.limit) filter.limit = Number(q.limit);
      return store.listPayloads(filter);
    },
  );

  app.get<{ Params: { payloadId: string } }>(
    routes.payload,
    { schema: { params: idParamsSchema }, onRequest: adminOnly },
    async (request): Promise<PayloadView> => {
      const payload = await store.getPayload(Number(request.params.payloadId));
      if (!payload) throw new VmpilotError('VMP_NOT_FOUND', `no payload ${request.params.payloadId}`);
      return payload;
    },
  );

  app.get(routes.pilots, { onRequest: adminOnly }, async (): Promise<PilotView[]> => store.listPilots({}));

  app.get<{ Params: { pilotId: string } }>(
    routes.pilot,
    { schema: { params: idParamsSchema }, onRequest: adminOnly },
    async (request): Promise<PilotView> => {
      const pilot = await store.getPilot(Number(request.params.pilotId));
      if (!pilot) throw new VmpilotError('VMP_NOT_FOUND', `no pilot ${request.params.pilotId}`);
      return pilot;
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
      const instruction = await store.addInstruction(pilotId, request.body, clock.now());
      request.log.info({ pilotId, instruction }, 'instruction added');
      waiters.wakePilot(pilotId);
      const body: InstructionReply = { instruction };
      return reply.code(201).send(body);
    },
  );
}
