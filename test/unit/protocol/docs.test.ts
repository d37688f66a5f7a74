import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parseReply, parseRequest } from '../../../src/mailbox/format.js';
import * as adminSchemas from '../../../src/protocol/admin-schemas.js';
import * as pilotSchemas from '../../../src/protocol/pilot-schemas.js';

const schemas = { ...pilotSchemas, ...adminSchemas };

/** The examples in docs/protocol.md, by the name in their `<!-- example: Name -->` marker (a name may mark several). */
function examples(): Map<string, unknown[]> {
  const text = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');
  const found = new Map<string, unknown[]>();
  const re = /<!-- example: (\w+) -->\s*```json\n([\s\S]*?)```/g;
  for (const m of text.matchAll(re)) found.set(m[1]!, [...(found.get(m[1]!) ?? []), JSON.parse(m[2]!)]);
  return found;
}

const requestSchemas: Record<string, object> = {
  RegisterRequest: schemas.registerSchema,
  HeartbeatRequest: schemas.heartbeatSchema,
  MatchRequest: schemas.matchSchema,
  ReportsRequest: schemas.reportsSchema,
  SubmitRequest: schemas.submitSchema,
  InstructionRequest: schemas.instructionSchema,
  SubmitBatchRequest: schemas.submitBatchSchema,
  KillRequest: schemas.killSchema,
  StartInstancesRequest: schemas.startInstancesSchema,
  StopInstancesRequest: schemas.stopInstancesSchema,
  EndpointTestRequest: schemas.endpointTestSchema,
};

const replies = [
  'ErrorReply',
  'RegisterReply',
  'HeartbeatReply',
  'MatchReply',
  'ReportsReply',
  'SubmitReply',
  'PayloadView',
  'PilotView',
  'InstructionReply',
  'HealthReply',
  'SubmitBatchReply',
  'KillReply',
  'ResubmitReply',
  'AccountingEntry',
  'AccountingTotal',
  'InstanceCostEntry',
  'UsageTimeline',
  'PayloadHistory',
  'InstructionView',
  'OverviewReply',
  'PilotDetailReply',
  'EndpointView',
  'EndpointSwitchReply',
  'InstanceView',
  'InstanceDetailReply',
  'StartInstancesReply',
  'StopInstancesReply',
  'DirectorStatusReply',
  'EndpointTestStage',
  'EndpointTestDone',
];

describe('docs/protocol.md', () => {
  const docs = examples();
  const ajv = new Ajv({ allErrors: true, strict: false });

  it('shows an example of every message', () => {
    for (const name of [...Object.keys(requestSchemas), ...replies]) expect(docs.has(name), name).toBe(true);
  });

  it.each(Object.entries(requestSchemas))('its %s examples fit the schema the server enforces', (name, schema) => {
    const validate = ajv.compile(schema);
    for (const example of docs.get(name) ?? []) {
      const ok = validate(example);
      expect(validate.errors ?? [], name).toEqual([]);
      expect(ok).toBe(true);
    }
  });

  it('its mailbox files are what the relay and the agent read, and carry a valid call', () => {
    const requests = docs.get('MailboxRequest') ?? [];
    const answers = docs.get('MailboxReply') ?? [];
    expect(requests.length).toBeGreaterThan(0);
    expect(answers.length).toBeGreaterThan(0);
    const validateMatch = ajv.compile(schemas.matchSchema);
    for (const example of requests) {
      const r = parseRequest(JSON.stringify(example), (example as { id: string }).id);
      expect(validateMatch(JSON.parse(r.body!)), JSON.stringify(validateMatch.errors)).toBe(true);
    }
    for (const example of answers) expect(parseReply(JSON.stringify(example), (example as { id: string }).id).status).toBe(200);
  });
});
