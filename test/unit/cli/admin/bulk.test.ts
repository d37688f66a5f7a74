import { describe, expect, it } from 'vitest';
import type { PilotView } from '../../../../src/protocol/index.js';
import { jobsFromYaml, selectPilots } from '../../../../src/cli/admin/bulk.js';
import { accountingTables } from '../../../../src/cli/admin/format.js';

describe('jobs file', () => {
  it('reads payloads with defaults, counts, core forms and shell strings', () => {
    const list = jobsFromYaml(`
defaults: { group: atlas, wallSec: 3600 }
payloads:
  - { command: [/opt/sim, --fast], cores: 2-8, count: 2 }
  - { command: "reco.sh > out.txt", cores: whole, group: cms, env: { RUN: 7 } }
  - { command: [x], cores: 4, memoryMb: 2000, priority: 5, name: four }
`);
    expect(list).toHaveLength(4);
    expect(list[0]).toEqual({ command: ['/opt/sim', '--fast'], cores: { min: 2, max: 8, wholeNode: false }, wallSec: 3600, group: 'atlas' });
    expect(list[2]).toEqual({ command: ['/bin/sh', '-c', 'reco.sh > out.txt'], cores: { min: 1, max: 1, wholeNode: true }, wallSec: 3600, group: 'cms', env: { RUN: '7' } });
    expect(list[3]).toMatchObject({ cores: { min: 4, max: 4 }, memoryMb: 2000, priority: 5, name: 'four' });
    expect(jobsFromYaml('- { command: [a] }')).toEqual([{ command: ['a'] }]);
    // requeue: false, as submit --no-requeue, from the defaults or the payload
    expect(jobsFromYaml('defaults: { requeue: false }\npayloads:\n  - { command: [a] }\n  - { command: [b], requeue: true }')).toEqual([
      { command: ['a'], requeue: false },
      { command: ['b'] },
    ]);
  });

  it('names the payload and field that is wrong', () => {
    expect(() => jobsFromYaml('payloads:\n  - { command: [a] }\n  - { command: [b], cores: 0 }', 'jobs.yaml')).toThrow(/jobs\.yaml: payloads\[1\]: cores "0"/);
    expect(() => jobsFromYaml('- { command: [a], colour: red }', 'jobs.yaml')).toThrow(/payloads\[0\]\.colour is not a payload field/);
    expect(() => jobsFromYaml('- { cores: 2 }')).toThrow(/payloads\[0\]\.command must be/);
    expect(() => jobsFromYaml('payloads: []')).toThrow(/holds no payloads/);
    expect(() => jobsFromYaml('- [unclosed')).toThrow(/not valid YAML/);
    expect(() => jobsFromYaml('- { command: [a], requeue: "no" }', 'jobs.yaml')).toThrow(/jobs\.yaml: payloads\[0\]\.requeue must be true or false, not "no"/);
  });
});

describe('pilot selection for drain and halt', () => {
  const p = (id: number, state: PilotView['state'], hostname: string) => ({ id, state, hostname }) as PilotView;
  const pilots = [p(1, 'running', 'vm-1.cern.ch'), p(2, 'halted', 'vm-2.cern.ch'), p(3, 'stalled', 'node-3.in2p3.fr')];
  it('selects live pilots by state and hostname glob, never halted ones', () => {
    expect(selectPilots(pilots, { all: true }).map((x) => x.id)).toEqual([1, 3]);
    expect(selectPilots(pilots, { host: '*.cern.ch' }).map((x) => x.id)).toEqual([1]);
    expect(selectPilots(pilots, { host: 'VM-?.CERN.CH' }).map((x) => x.id)).toEqual([1]);
    // the whole name, not a part of it
    expect(selectPilots(pilots, { host: 'cern.ch' }).map((x) => x.id)).toEqual([]);
    // regular expression syntax is plain text in a glob
    expect(selectPilots(pilots, { host: '(' }).map((x) => x.id)).toEqual([]);
    expect(selectPilots(pilots, { state: 'stalled' }).map((x) => x.id)).toEqual([3]);
    expect(() => selectPilots(pilots, { state: 'sleeping' })).toThrow(/--state "sleeping" must be one of/);
    expect(() => selectPilots(pilots, { host: '' })).toThrow(/--host "" must be a glob/);
  });
});

describe('accounting tables', () => {
  it('sums by group, pilot and day', () => {
    const split = { cancelled: 0, evicted: 0, failedCoreSec: 0, cancelledCoreSec: 0 };
    const text = accountingTables([
      { day: '2025-01-01', group: 'atlas', pilotId: 1, coreSec: 100, wallSec: 50, done: 1, failed: 0, ...split, doneCoreSec: 70, evicted: 1, evictedCoreSec: 30 },
      { day: '2025-01-02', group: 'atlas', pilotId: 2, coreSec: 10, wallSec: 10, done: 0, failed: 1, ...split, doneCoreSec: 0, evictedCoreSec: 0, failedCoreSec: 10 },
      { day: '2025-01-02', group: 'cms', pilotId: 2, coreSec: 5, wallSec: 5, done: 0, failed: 0, ...split, doneCoreSec: 0, evictedCoreSec: 0, cancelled: 1, cancelledCoreSec: 5 },
    ]);
    expect(text).toMatch(
      /By group\nGROUP\s+CORE-SEC\s+DONE-SEC\s+FAILED-SEC\s+CANCELLED-SEC\s+EVICTED-SEC\s+WALL-SEC\s+DONE\s+FAILED\s+CANCELLED\s+EVICTED\n/,
    );
    expect(text).toMatch(/\natlas\s+110\.0\s+70\.0\s+10\.0\s+0\.0\s+30\.0\s+60\.0\s+1\s+1\s+0\s+1\ncms\s+5\.0\s+0\.0\s+0\.0\s+5\.0\s+0\.0\s+5\.0\s+0\s+0\s+1\s+0\n/);
    expect(text).toMatch(/By pilot[\s\S]*\n2\s+15\.0\s+0\.0\s+10\.0\s+5\.0\s+0\.0\s+15\.0\s+0\s+1\s+1\s+0/);
    expect(text).toMatch(/By day[\s\S]*2025-01-02\s+15\.0/);
    // rows from an older server (no split) count the split as 0
    expect(accountingTables([{ day: '2025-01-01', group: 'a', pilotId: 1, coreSec: 1, wallSec: 1, done: 1, failed: 0 }])).toMatch(/\na\s+1\.0\s+0\.0/);
  });
});
