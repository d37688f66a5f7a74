#!/usr/bin/env node
// Agent start-up: `vmpilot --version` and `vmpilot run` until registered,
// for the bundle (and the single executable when built), beside bare
// `node -e 0` measured in the same run.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { AGENT, AGENT_BINARY, build, percentile, record, startAgent, startServer, tempDir, timeCommand, tokens } from './lib.mjs';

build();
const runs = Number(process.env.BENCH_RUNS ?? 30);
const hasBinary = existsSync(AGENT_BINARY);

timeCommand(process.execPath, ['-e', '0'], 3); // warm the page cache
const bare = timeCommand(process.execPath, ['-e', '0'], runs);
const bundle = timeCommand(process.execPath, [AGENT, '--version'], runs);
const binary = hasBinary ? timeCommand(AGENT_BINARY, ['--version'], runs) : null;

const tmp = tempDir();
const tok = tokens();
const server = await startServer(path.join(tmp.dir, 'server.db'), tok);
async function untilRegistered(binaryPath) {
  const times = [];
  for (let i = 0; i < Math.min(runs, 15); i++) {
    const agent = startAgent(server.url, tok, { stateDir: path.join(tmp.dir, `a${binaryPath ? 'b' : 'n'}${i}`), binary: binaryPath });
    times.push(await agent.registered);
    agent.child.kill('SIGKILL');
    await agent.exited;
  }
  return percentile(times, 50);
}
const runBundle = await untilRegistered(null);
const runBinary = hasBinary ? await untilRegistered(AGENT_BINARY) : NaN;
await server.stop();
tmp.cleanup();

const figures = [
  { name: 'node -e 0 (p50)', value: bare.p50, unit: 'ms' },
  { name: 'vmpilot --version, bundle (p50)', value: bundle.p50, unit: 'ms', goal: { op: '<=', value: Math.round(bare.p50 + 50) }, compare: `bare node ${bare.p50.toFixed(0)} ms + 50` },
  { name: 'vmpilot --version, binary (p50)', value: binary ? binary.p50 : NaN, unit: 'ms', ...(binary ? { goal: { op: '<=', value: Math.round(bare.p50 + 50) } } : {}), compare: hasBinary ? 'same goal' : 'binary not built' },
  { name: 'vmpilot run until registered, bundle (p50)', value: runBundle, unit: 'ms', compare: 'DIRAC pilot bootstrap: minutes' },
  { name: 'vmpilot run until registered, binary (p50)', value: runBinary, unit: 'ms', compare: hasBinary ? 'DIRAC pilot bootstrap: minutes' : 'binary not built' },
];
record('agent-startup', figures, { runs });
