// Submit → first payload running, from zero instances, through the real
// director: the built server with one `process` endpoint (its pilots are the
// built agent as local processes), nothing running. One payload is submitted;
// the submit wakes the director, which records an instance, starts its agent,
// the agent registers with the instance's one-time credential, asks for work
// and starts the payload. Timed from the submit call to the payload's state
// `running` on the server (read every 5 ms). A fresh server and database each
// round, so every round starts from zero instances. Used by bench/director.mjs.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { admin, percentile, startServer, tempDir, tokens, waitFor } from './lib.mjs';

/** `rounds` rounds; resolves with the milliseconds of each. */
export async function firstPayloadRounds(rounds) {
  const ms = [];
  for (let r = 0; r < rounds; r++) {
    const tmp = tempDir();
    const config = path.join(tmp.dir, 'server.yaml');
    writeFileSync(
      config,
      [
        'endpoints:',
        '  local:',
        '    driver: process',
        `    process: { workDir: ${JSON.stringify(path.join(tmp.dir, 'instances'))}, extraArgs: [--isolation, none] }`,
        '    shapes: { one: { cores: 1, memoryMb: 500 } }',
        '    limits: { instances: 1 }',
        '    timeouts: { idleSec: 2 }',
        '',
      ].join('\n'),
    );
    const tok = tokens();
    const server = await startServer(path.join(tmp.dir, 'server.db'), tok, ['--config', config]);
    const api = admin(server.url, tok.admin);
    try {
      const t0 = performance.now();
      const { id } = await api('POST', '/v1/payloads', { command: ['sleep', '1'], group: 'g' });
      await waitFor('the payload to run', async () => (await api('GET', `/v1/payloads/${id}`)).state === 'running', 60_000);
      ms.push(performance.now() - t0);
      // the pilot halts when idle and the director discards its instance: wait, so that no agent outlives the round
      await waitFor('the instance to be deleted', async () => (await api('GET', '/v1/instances')).every((i) => i.state === 'deleted'), 60_000, 100);
    } finally {
      await server.stop();
      tmp.cleanup();
    }
  }
  return { ms, p50: percentile(ms, 50), max: Math.max(...ms) };
}
