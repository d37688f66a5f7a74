import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { endpointCommand, registerEndpointTestCommand } from '../../../../src/cli/admin/endpoint-command.js';
import { doneText, stageText } from '../../../../src/cli/admin/endpoint-test.js';

describe('endpoint test output', () => {
  it('prints a passed stage as a mark, the stage, its seconds and what it found', () => {
    expect(stageText({ stage: 'registered', ok: true, ms: 4210, detail: 'pilot 7 registered as instance 3' })).toBe('✓ registered     4.2 s  pilot 7 registered as instance 3');
  });

  it('prints a failed stage with its reason and each hint below it, control characters escaped', () => {
    const text = stageText({ stage: 'booting', ok: false, ms: 120_000, detail: 'boot timeout\u001b[2J', hints: ['squeue --name k', 'the partition'] });
    expect(text.split('\n')).toEqual(['✗ booting      120.0 s  boot timeout\\e[2J', '    check: squeue --name k', '    check: the partition']);
  });

  it('ends with a summary naming the failed stage', () => {
    expect(doneText('a', { done: true, ok: true, totalMs: 9650 }, undefined)).toBe('endpoint a: every stage passed in 9.7 s');
    expect(doneText('a', { done: true, ok: false, totalMs: 1000 }, { stage: 'probe', ok: false, ms: 1, detail: 'x' })).toBe('endpoint a: failed at probe (1.0 s in all)');
  });

  it('attaches test to one endpoint command, whichever registered it first', () => {
    const program = new Command('vmpilot-server');
    endpointCommand(program).command('disable');
    registerEndpointTestCommand(program);
    const endpoint = program.commands.filter((c) => c.name() === 'endpoint');
    expect(endpoint).toHaveLength(1);
    expect(endpoint[0]!.commands.map((c) => c.name())).toEqual(['disable', 'test']);
  });
});
