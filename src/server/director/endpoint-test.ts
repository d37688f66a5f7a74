/**
 * `endpoint test NAME`: start one instance of an endpoint end to end through
 * the director and say, stage by stage (endpoint-test-plan.ts STAGES), how
 * long each took, or which one failed, with the instance's reason (it
 * carries the driver's own words) or the timeout, and what to check.
 *
 * The instance is started by hand (`Director.startByHand`) for a group made
 * for this test only, so its pilot serves the probe payload and no real
 * work. Waiting is on the store's records, polled on the Clock port, each
 * stage within its own bound (from the endpoint's timeouts) and the whole
 * within `timeoutSec`. On a failure the test cleans up: the probe is
 * cancelled, a registered instance drained (marked failed if it does not
 * halt), one still coming marked failed so the director deletes it; then its
 * deletion is waited for, within its own bound, and said as a last `deleted`
 * line: nothing is left behind.
 */
import { randomBytes } from 'node:crypto';
import type { EndpointTestDone, EndpointTestLine, EndpointTestStageName, PayloadView } from '../../protocol/index.js';
import type { Clock } from '../../shared/clock.js';
import { describeError } from '../../shared/errors.js';
import type { Store } from '../store/store.js';
import type { EndpointConfig } from './endpoint-config.js';
import { hintsFor, probeCommand, probeGroup, stageBounds } from './endpoint-test-plan.js';
import type { InstanceState } from './instance-states.js';
import type { Director } from './loop.js';
import type { InstanceRecord } from './ports.js';

/** What the test reads and writes of the store. */
export type EndpointTestStore = Pick<Store, 'getInstance' | 'instanceHistory' | 'updateInstance' | 'disabledEndpoints' | 'submitPayload' | 'getPayload' | 'killPayload' | 'drainOnce'>;

/** What the test needs. */
export interface EndpointTestDeps {
  director: Pick<Director, 'endpoints' | 'driverOf' | 'startByHand' | 'everyMs' | 'poke'>;
  store: EndpointTestStore;
  clock: Clock;
  /** Wake the match long polls: work was queued, an instruction was added (the API's notifier). */
  notify?: { submitted(): void; instructed(pilotId: number): void };
  /** Random hex for the probe group (default: 8 random bytes). */
  randomHex?: () => string;
  /** Between two looks at the store (default 250 ms). */
  pollMs?: number;
  /** Aborted: the server is stopping; waiting ends at once (cleanup still marks and drains, without waiting). */
  signal?: AbortSignal;
}

/** What to test. */
export interface EndpointTestOptions {
  endpoint: string;
  shape?: string;
  /** The whole test at most this long, cleanup apart (default: the stages' own bounds only). */
  timeoutSec?: number;
}

type Verdict = { ok: boolean; detail: string };

const ENDED: ReadonlySet<InstanceState> = new Set(['halted', 'failed', 'deleted']);
const BOOTED: ReadonlySet<InstanceState> = new Set(['booting', 'registered', 'halted']);
const PAYLOAD_ENDED: ReadonlySet<string> = new Set(['done', 'failed', 'cancelled']);

/**
 * Run the test; `emit` gets a line per stage as it ends, then the final
 * line (also returned). Never throws for what it finds: a store or driver
 * error fails the stage it happened in.
 */
export async function runEndpointTest(deps: EndpointTestDeps, o: EndpointTestOptions, emit: (line: EndpointTestLine) => void): Promise<EndpointTestDone> {
  return new EndpointTest(deps, o, emit).run();
}

class EndpointTest {
  private readonly clock: Clock;
  private readonly t0: number;
  private readonly deadline: number;
  private readonly group: string;
  private readonly pollMs: number;
  private ep: EndpointConfig | undefined;
  private instance: InstanceRecord | null = null;
  private payloadId: number | null = null;

  constructor(
    private readonly d: EndpointTestDeps,
    private readonly o: EndpointTestOptions,
    private readonly emit: (line: EndpointTestLine) => void,
  ) {
    this.clock = d.clock;
    this.t0 = d.clock.now();
    this.deadline = o.timeoutSec === undefined ? Infinity : this.t0 + o.timeoutSec * 1000;
    this.group = probeGroup((d.randomHex ?? (() => randomBytes(8).toString('hex')))());
    this.pollMs = d.pollMs ?? 250;
  }

  async run(): Promise<EndpointTestDone> {
    const ok = await this.stages();
    if (!ok && this.instance) await this.cleanup();
    const done: EndpointTestDone = { done: true, ok, totalMs: this.clock.now() - this.t0, instanceId: this.instance?.id ?? null, probeGroup: this.group };
    this.emit(done);
    return done;
  }

  /** The stages in order; false at the first that fails (said). */
  private async stages(): Promise<boolean> {
    return (
      (await this.stage('config', () => this.config())) &&
      (await this.stage('credentials', () => this.credentials())) &&
      (await this.stage('create', () => this.create())) &&
      (await this.stage('booting', () => this.untilInstance('booting', (i) => (i.bootedAt !== null || BOOTED.has(i.state) || i.pilotId !== null ? `the driver says ${i.driverId} runs` : null), 'the driver to say it runs'))) &&
      (await this.stage('registered', () => this.untilInstance('registered', (i) => (i.pilotId !== null ? `pilot ${i.pilotId} registered as instance ${i.id}` : null), 'a pilot to register'))) &&
      (await this.stage('probe', () => this.probe())) &&
      (await this.stage('halted', () => this.halted())) &&
      (await this.stage('deleted', () => this.deleted(this.bound('deleted'))))
    );
  }

  /** Run one stage, time it and say it. */
  private async stage(name: EndpointTestStageName, body: () => Promise<Verdict>): Promise<boolean> {
    const start = this.clock.now();
    let v: Verdict;
    try {
      v = await body();
    } catch (err) {
      v = { ok: false, detail: describeError(err) };
    }
    if (!v.ok && name !== 'deleted' && this.instance?.driverId) {
      const said = await this.driverSays(this.instance.driverId);
      if (said) v = { ok: false, detail: `${v.detail}; ${said}` };
    }
    this.emit({
      stage: name,
      ok: v.ok,
      ms: this.clock.now() - start,
      detail: v.detail,
      ...(v.ok ? {} : { hints: this.ep ? hintsFor(name, this.ep, this.instance?.key ?? null) : hintsConfigOnly() }),
    });
    return v.ok;
  }

  /**
   * What the driver says of the resource now (its state and detail: a
   * cloud's status reason, an exit status), within 10 s; null when it has no
   * such resource (the director deleted it already: its reason says why).
   */
  private async driverSays(id: string): Promise<string | null> {
    const driver = this.d.director.driverOf(this.ep!.name);
    if (!driver) return 'no driver to ask';
    const stop = new AbortController();
    try {
      const r = await Promise.race([driver.describe(id), this.clock.sleep(10_000, stop.signal).then(() => 'late' as const)]);
      if (r === 'late') return `the driver did not describe ${id} within 10 s`;
      return r ? `the driver says ${id} is ${r.state}${r.detail ? ` (${r.detail})` : ''}` : null;
    } catch (err) {
      return `describing ${id} failed: ${describeError(err)}`;
    } finally {
      stop.abort();
    }
  }

  private bound(stage: EndpointTestStageName): number {
    return stageBounds(this.ep!, this.d.director.everyMs)[stage];
  }

  private async config(): Promise<Verdict> {
    const { director, store } = this.d;
    const ep = director.endpoints.find((e) => e.name === this.o.endpoint);
    if (!ep) return { ok: false, detail: `no endpoint "${this.o.endpoint}"; configured: ${director.endpoints.map((e) => e.name).join(', ') || 'none'}` };
    this.ep = ep;
    const shape = this.o.shape === undefined ? ep.shapes[0] : ep.shapes.find((s) => s.name === this.o.shape);
    if (!shape) return { ok: false, detail: `endpoint ${ep.name} has no shape "${this.o.shape}"; it has ${ep.shapes.map((s) => s.name).join(', ')}` };
    if (!ep.enabled) return { ok: false, detail: `endpoint ${ep.name} is disabled in the configuration (enabled: false)` };
    if ((await store.disabledEndpoints()).has(ep.name)) return { ok: false, detail: `endpoint ${ep.name} was disabled by an operator` };
    if (!director.driverOf(ep.name)) return { ok: false, detail: `endpoint ${ep.name} has no driver in this server` };
    return { ok: true, detail: `${ep.name}: driver ${ep.driver.kind}, shape ${shape.name} (${shape.cores} core${shape.cores === 1 ? '' : 's'}, ${shape.memoryMb} MB)` };
  }

  private async credentials(): Promise<Verdict> {
    const driver = this.d.director.driverOf(this.ep!.name)!;
    const sec = Math.min(this.bound('credentials'), this.left());
    const stop = new AbortController();
    const late = this.clock.sleep(sec * 1000, this.d.signal ? AbortSignal.any([stop.signal, this.d.signal]) : stop.signal).then(() => null);
    try {
      const listed = await Promise.race([driver.list(), late]);
      if (listed === null) return { ok: false, detail: `the driver did not answer a listing within ${fmtSec(sec)}` };
      return { ok: true, detail: `the ${driver.kind} driver lists ${listed.length} resource(s) of this endpoint` };
    } finally {
      stop.abort();
    }
  }

  private async create(): Promise<Verdict> {
    const [rec] = await this.d.director.startByHand(this.ep!.name, { ...(this.o.shape === undefined ? {} : { shape: this.o.shape }), groups: [this.group] });
    this.instance = rec!;
    return this.untilInstance('create', (i) => (i.driverId !== null ? `created ${i.driverId} (instance ${i.id}, key ${i.key}, group ${this.group})` : null), 'the driver to accept the create');
  }

  private async probe(): Promise<Verdict> {
    const { store, clock } = this.d;
    const { marker, command } = probeCommand(this.group);
    const p = await store.submitPayload(
      { command, cores: { min: 1, max: 1, wholeNode: false }, memoryMb: null, wallSec: 60, group: this.group, name: 'endpoint-test-probe', priority: 0, env: {}, requeue: false },
      clock.now(),
    );
    this.payloadId = p.id;
    this.d.notify?.submitted();
    const judge = (v: { p: PayloadView | null; i: InstanceRecord }): Verdict | null => {
      if (!v.p) return { ok: false, detail: `the probe payload ${p.id} vanished from the store` };
      if (PAYLOAD_ENDED.has(v.p.state)) {
        const out = v.p.outputTail ?? '';
        if (v.p.state !== 'done' || v.p.exitCode !== 0) return { ok: false, detail: `the probe payload ${p.id} ended ${v.p.state}${v.p.exitCode === null ? '' : ` with exit code ${v.p.exitCode}`}${v.p.message ? `: ${v.p.message}` : ''}` };
        if (v.p.pilotId !== v.i.pilotId) return { ok: false, detail: `the probe payload ${p.id} ran on pilot ${v.p.pilotId}, not on the instance's pilot ${v.i.pilotId}` };
        if (!out.includes(marker)) return { ok: false, detail: `the probe payload ${p.id} exited 0 but its output does not hold the marker "${marker}" (output: ${JSON.stringify(out.slice(-200))})` };
        return { ok: true, detail: `payload ${p.id} ran on pilot ${v.p.pilotId}: exit 0, marker in its output` };
      }
      if (ENDED.has(v.i.state)) return { ok: false, detail: `instance ${v.i.id} is ${v.i.state} before the probe ended: ${v.i.reason}` };
      return null;
    };
    return this.until(
      'probe',
      async () => ({ p: await store.getPayload(p.id), i: await this.read() }),
      judge,
      (v) => `the probe payload ${p.id} is ${v?.p?.state ?? 'unknown'}`,
    );
  }

  private async halted(): Promise<Verdict> {
    const pilotId = this.instance!.pilotId!;
    await this.d.store.drainOnce(pilotId, { type: 'drain', reason: 'endpoint test: the probe is done' }, this.clock.now());
    this.d.notify?.instructed(pilotId);
    return this.untilHalted(this.bound('halted'), pilotId);
  }

  /** Until the instance's history says halted (the cycle may mark it halted and deleted at once). */
  private untilHalted(sec: number, pilotId: number, left = true): Promise<Verdict> {
    const id = this.instance!.id;
    return this.until(
      'halted',
      () => this.d.store.instanceHistory(id),
      (h) => {
        const halted = h.find((e) => e.state === 'halted');
        if (halted) return { ok: true, detail: `pilot ${pilotId} drained and halted: ${halted.reason}` };
        const failed = h.find((e) => e.state === 'failed');
        return failed ? { ok: false, detail: failed.reason } : null;
      },
      () => `pilot ${pilotId} to halt after its drain`,
      sec,
      left,
    );
  }

  private deleted(sec: number, left = true): Promise<Verdict> {
    return this.untilInstance('deleted', (i) => (i.state === 'deleted' ? `the director deleted ${i.driverId ?? 'it'} at the driver` : null), 'the director to delete it', sec, left, false);
  }

  /** Until `pass` says something of the instance, failing when it ends (failed, deleted) first. */
  private untilInstance(stage: EndpointTestStageName, pass: (i: InstanceRecord) => string | null, waitingFor: string, sec = this.bound(stage), left = true, failOnEnd = true): Promise<Verdict> {
    return this.until(
      stage,
      () => this.read(),
      (i) => {
        const detail = pass(i);
        if (detail !== null) return { ok: true, detail };
        if (failOnEnd && ENDED.has(i.state)) return { ok: false, detail: i.reason };
        return null;
      },
      (i) => `waiting for ${waitingFor}; instance ${this.instance!.id} is ${i?.state ?? 'unknown'}${i ? `: ${i.reason}` : ''}`,
      sec,
      left,
    );
  }

  /**
   * Read until `judge` decides, at most `sec` (and, when `left`, what is
   * left of the whole test's time): then a timeout that says what it was
   * waiting for.
   */
  private async until<T>(stage: EndpointTestStageName, read: () => Promise<T>, judge: (v: T) => Verdict | null, waiting: (v: T | undefined) => string, sec = this.bound(stage), left = true): Promise<Verdict> {
    const start = this.clock.now();
    const own = start + sec * 1000;
    const end = left ? Math.min(own, this.deadline) : own;
    let last: T | undefined;
    for (;;) {
      last = await read();
      const v = judge(last);
      if (v) return v;
      if (this.d.signal?.aborted) return { ok: false, detail: `the server is stopping: ${waiting(last)}` };
      const now = this.clock.now();
      if (now >= end) {
        const why = end === own ? `timed out after ${fmtSec(sec)}` : `the test's timeout (${fmtSec(this.o.timeoutSec!)}) passed`;
        return { ok: false, detail: `${why}: ${waiting(last)}` };
      }
      await this.clock.sleep(Math.min(this.pollMs, end - now), this.d.signal);
    }
  }

  private async read(): Promise<InstanceRecord> {
    const id = this.instance!.id;
    const i = await this.d.store.getInstance(id);
    if (!i) throw new Error(`instance ${id} vanished from the store`);
    this.instance = i;
    return i;
  }

  private left(): number {
    return this.deadline === Infinity ? Infinity : Math.max(0, (this.deadline - this.clock.now()) / 1000);
  }

  /** Cancel the probe, stop the instance, and wait (bounded) until the director deleted it; said as a last `deleted` line. */
  private async cleanup(): Promise<void> {
    const { store, clock } = this.d;
    const notes: string[] = [];
    if (this.payloadId !== null) {
      try {
        const p = await store.getPayload(this.payloadId);
        if (p && !PAYLOAD_ENDED.has(p.state)) {
          await store.killPayload(this.payloadId, 'endpoint test: a stage failed', clock.now());
          notes.push(`probe payload ${this.payloadId} cancelled`);
        }
      } catch (err) {
        notes.push(`cannot cancel the probe payload ${this.payloadId}: ${describeError(err)}`);
      }
    }
    await this.stage('deleted', async () => {
      let i = await this.read();
      if (i.state !== 'deleted' && !ENDED.has(i.state)) {
        if (i.pilotId !== null) {
          await store.drainOnce(i.pilotId, { type: 'drain', reason: 'endpoint test: a stage failed' }, clock.now());
          this.d.notify?.instructed(i.pilotId);
          notes.push(`pilot ${i.pilotId} drained`);
          this.d.director.poke();
          const h = await this.untilHalted(this.bound('halted'), i.pilotId, false);
          i = await this.read();
          if (!h.ok && !ENDED.has(i.state)) await this.markFailed('its pilot did not halt after a drain', notes);
        } else {
          await this.markFailed('stopped: a stage failed', notes);
        }
      }
      this.d.director.poke();
      const v = await this.deleted(this.bound('deleted'), false);
      const what = notes.length > 0 ? ` (${notes.join('; ')})` : '';
      return { ok: v.ok, detail: v.ok ? `cleanup: instance ${i.id} deleted${what}` : `cleanup${what}: ${v.detail}` };
    });
  }

  private async markFailed(why: string, notes: string[]): Promise<void> {
    const id = this.instance!.id;
    try {
      await this.d.store.updateInstance(id, { state: 'failed', reason: `endpoint test: ${why}` }, this.clock.now());
      notes.push(`instance ${id} marked failed`);
    } catch (err) {
      // the director moved it on meanwhile (halted, deleted): what it did stands
      notes.push(`instance ${id} not marked failed: ${describeError(err)}`);
    }
  }
}

function hintsConfigOnly(): string[] {
  return ['the endpoints: section of serve --config (vmpilot-server endpoints lists them)'];
}

/** Seconds as people read them: "90 s". */
function fmtSec(sec: number): string {
  return `${Math.round(sec * 10) / 10} s`;
}
