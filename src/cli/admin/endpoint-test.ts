/**
 * `vmpilot-server endpoint test NAME`: asks the server to start one
 * instance of the endpoint end to end (POST /v1/endpoints/:name/test) and
 * prints each stage as its line arrives: `✓ registered   4.2 s  pilot 7 …`,
 * or `✗ booting  120.0 s  <why>` and what to check. `--json`: one JSON
 * document at the end. A failed stage exits 5 (VMP_ENDPOINT_TEST).
 */
import type { EndpointTestDone, EndpointTestLine, EndpointTestRequest, EndpointTestStage } from '../../protocol/index.js';
import { paths } from '../../protocol/paths.js';
import { VmpilotError } from '../../shared/errors.js';
import { AdminClient, type ClientOptions } from './client.js';
import { intOption } from './commands.js';
import { visible } from './visible.js';

/** Options of `endpoint test`, as commander gives them. */
export interface EndpointTestCliOptions extends ClientOptions {
  shape?: string;
  timeout?: string;
  json?: boolean;
}

/** What `--json` prints: the stages and the end, in one document. */
export interface EndpointTestReport {
  endpoint: string;
  ok: boolean;
  totalMs: number;
  instanceId: number | null;
  probeGroup: string | null;
  stages: EndpointTestStage[];
}

/** The width of the stage column (the longest stage name). */
const STAGE_WIDTH = 'credentials'.length;

/** One stage as a line (and its hints below it, when it failed). Pure. */
export function stageText(s: EndpointTestStage): string {
  const mark = s.ok ? '✓' : '✗';
  const sec = `${(s.ms / 1000).toFixed(1)} s`.padStart(8);
  const head = `${mark} ${s.stage.padEnd(STAGE_WIDTH)} ${sec}  ${visible(s.detail)}`;
  const hints = (s.hints ?? []).map((h) => `    check: ${visible(h)}`);
  return [head, ...hints].join('\n');
}

/** The summary line at the end. Pure. */
export function doneText(endpoint: string, d: EndpointTestDone, failed: EndpointTestStage | undefined): string {
  const total = `${(d.totalMs / 1000).toFixed(1)} s`;
  return d.ok ? `endpoint ${endpoint}: every stage passed in ${total}` : `endpoint ${endpoint}: failed at ${failed?.stage ?? 'an unknown stage'} (${total} in all)`;
}

/** Run `endpoint test NAME`. Throws VMP_ENDPOINT_TEST (exit 5) when a stage failed, after printing every stage. */
export async function endpointTest(name: string, o: EndpointTestCliOptions, out: (text: string) => void = (t) => process.stdout.write(`${t}\n`)): Promise<void> {
  const body: EndpointTestRequest = {};
  if (o.shape !== undefined) body.shape = o.shape;
  if (o.timeout !== undefined) body.timeoutSec = intOption('--timeout', o.timeout, 1, 86400);
  const client = new AdminClient(o);
  const stages: EndpointTestStage[] = [];
  let done: EndpointTestDone | null = null;
  // the server bounds each stage and its cleanup; this bounds the wait for the whole answer (a day at most)
  const limitMs = ((body.timeoutSec ?? 86400) + 3600) * 1000;
  await client.postLines(
    paths.endpointTest(name),
    body,
    (raw) => {
      const line = raw as EndpointTestLine;
      if ('done' in line) {
        done = line;
        return;
      }
      stages.push(line);
      if (!o.json) out(stageText(line));
    },
    limitMs,
  );
  const end = done as EndpointTestDone | null;
  if (!end) throw new VmpilotError('VMP_SERVER', `the server's answer to the endpoint test of ${name} ended before its last line`);
  const failed = stages.find((s) => !s.ok);
  if (o.json) {
    const report: EndpointTestReport = { endpoint: name, ok: end.ok, totalMs: end.totalMs, instanceId: end.instanceId ?? null, probeGroup: end.probeGroup ?? null, stages };
    out(JSON.stringify(report, null, 2));
  } else {
    out(doneText(name, end, failed));
  }
  if (!end.ok) {
    throw new VmpilotError('VMP_ENDPOINT_TEST', `endpoint ${name} failed at stage ${failed?.stage ?? '?'}: ${visible(failed?.detail ?? 'no stage said why')}`);
  }
}
