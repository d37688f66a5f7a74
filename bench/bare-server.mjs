#!/usr/bin/env node
// The bare fastify route server-load compares the heartbeat with: the same
// path, the JSON body parsed (fastify's own parser) and a reply of the
// heartbeat reply's shape, with no authentication, no schema, no store and no
// logger. What it serves per second is the ceiling of fastify on this machine
// in this run; a heartbeat's share of it is the cost of vmpilot's own work.
// Usage: node bench/bare-server.mjs (prints "bare fastify listening on URL").
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.post('/v1/pilots/:pilotId/heartbeat', async (request) => {
  if (typeof request.body !== 'object' || request.body === null) throw new Error('no JSON body');
  return { intervalSec: 60, instructions: [] };
});
const url = await app.listen({ host: '127.0.0.1', port: 0 });
console.log(`bare fastify listening on ${url}`);
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
