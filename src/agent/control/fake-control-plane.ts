/**
 * A scriptable in-memory ControlPlane for tests. It behaves like the server
 * where the agent can tell: match holds open until a payload is offered, an
 * instruction comes or the call is aborted, and, when the fake has a clock,
 * until the request's `waitSec` passes on it (then it answers "nothing");
 * reports are applied once per seq; calls can be made to fail a given
 * number of times.
 */
import type {
  Assignment,
  HeartbeatReply,
  HeartbeatRequest,
  Instruction,
  MatchReply,
  MatchRequest,
  RegisterReply,
  RegisterRequest,
  Report,
  ReportsReply,
} from '../../protocol/index.js';
import type { Clock } from '../../shared/clock.js';
import { VmpilotError } from '../../shared/errors.js';
import type { ControlPlane } from '../ports.js';

type Method = 'register' | 'heartbeat' | 'match' | 'report';

/** In-memory control plane; inspect `applied`, `heartbeats`, `matches` in tests. */
export class FakeControlPlane implements ControlPlane {
  /** Reports applied, in the order the fake applied them (each seq once). */
  readonly applied: Report[] = [];
  /** Every batch received, including repeats. */
  readonly batches: Report[][] = [];
  readonly heartbeats: HeartbeatRequest[] = [];
  readonly matches: MatchRequest[] = [];
  readonly registrations: RegisterRequest[] = [];
  registerReply: RegisterReply = {
    pilotId: 7,
    credential: 'pilot-credential',
    heartbeatIntervalSec: 30,
    matchWaitMaxSec: 20,
    serverTime: 0,
  };
  heartbeatIntervalSec = 30;
  /** Instructions handed out with every heartbeat and match reply until acknowledged. */
  instructions: Instruction[] = [];
  /** When set, every match reply carries it (the large payload the server designates to this pilot). */
  largestWaiting: MatchReply['largestWaiting'];
  /** Report seqs to refuse (they count as delivered). */
  refuse = new Set<number>();
  /**
   * Payloads every match call hands out again unless its `holding` lists them,
   * as the server does with a payload it assigned whose start it has not heard of.
   */
  redeliver: Assignment[] = [];
  /** When set, the next report reply claims this applied seq and applies nothing (someone else reported as this pilot). */
  forgedAppliedSeq: number | null = null;
  private appliedSeq = 0;
  private deliveredInMatch = new Set<number>();
  private offers: Assignment[] = [];
  private waiters: (() => void)[] = [];
  private failures: Partial<Record<Method, number>> = {};

  /** With a clock, a match is answered "nothing" once its `waitSec` has passed on it; without one it waits for work. */
  constructor(private readonly clock?: Clock) {}

  /** Make the next `times` calls of `method` fail with VMP_UNREACHABLE. */
  failNext(method: Method, times = 1): void {
    this.failures[method] = (this.failures[method] ?? 0) + times;
  }

  /** Stop failing: every call answers again (the network is back). */
  heal(): void {
    this.failures = {};
  }

  /** Queue a payload for the next match call (handed out whether it fits or not). */
  offer(...assignments: Assignment[]): void {
    this.offers.push(...assignments);
    this.wake();
  }

  /** Add an instruction and wake an open match call so it is delivered at once. */
  instruct(instruction: Instruction): void {
    this.instructions.push(instruction);
    this.wake();
  }

  /** Number of match calls currently held open. */
  get openMatches(): number {
    return this.waiters.length;
  }

  /** The identity the agent resumed, when it did. */
  resumed: { pilotId: number; credential: string } | null = null;

  resume(pilotId: number, credential: string): void {
    this.resumed = { pilotId, credential };
  }

  async register(request: RegisterRequest): Promise<RegisterReply> {
    this.maybeFail('register');
    this.registrations.push(request);
    // a new pilot: its reports are numbered from 1
    this.appliedSeq = 0;
    return { ...this.registerReply };
  }

  async heartbeat(request: HeartbeatRequest): Promise<HeartbeatReply> {
    this.maybeFail('heartbeat');
    this.heartbeats.push(request);
    return { intervalSec: this.heartbeatIntervalSec, instructions: [...this.instructions] };
  }

  async match(request: MatchRequest, signal?: AbortSignal): Promise<MatchReply> {
    this.maybeFail('match');
    this.matches.push(request);
    const clock = this.clock;
    const until = clock ? clock.now() + request.waitSec * 1000 : null;
    // as of the answer: a test may change it while the request is held
    const waiting = () => (this.largestWaiting === undefined ? {} : { largestWaiting: this.largestWaiting });
    for (;;) {
      if (signal?.aborted) throw new VmpilotError('VMP_UNREACHABLE', 'aborted', { details: { aborted: true } });
      const again = this.offers.length === 0 ? this.redeliver.find((a) => !request.holding.includes(a.id)) : undefined;
      // as over a network, a redelivery comes back on a later turn of the event loop: an agent that keeps asking spins visibly
      if (again) await new Promise((r) => setImmediate(r));
      const payload = this.offers.shift() ?? again;
      const fresh = this.instructions.filter((i) => !this.deliveredInMatch.has(i.id));
      if (payload || fresh.length > 0) {
        for (const i of this.instructions) this.deliveredInMatch.add(i.id);
        return { payload: payload ?? null, instructions: [...this.instructions], ...waiting() };
      }
      if (clock && until !== null && clock.now() >= until) return { payload: null, instructions: [], ...waiting() };
      await new Promise<void>((resolve) => {
        const timer = new AbortController();
        const done = () => {
          this.waiters = this.waiters.filter((w) => w !== done);
          signal?.removeEventListener('abort', done);
          timer.abort();
          resolve();
        };
        this.waiters.push(done);
        signal?.addEventListener('abort', done, { once: true });
        if (clock && until !== null) void clock.sleep(until - clock.now(), timer.signal).then(done);
      });
    }
  }

  async report(reports: Report[]): Promise<ReportsReply> {
    this.maybeFail('report');
    this.batches.push(reports);
    const forged = this.forgedAppliedSeq;
    this.forgedAppliedSeq = null;
    if (forged !== null) return { appliedSeq: forged, refused: [], instructions: [] };
    const refused: ReportsReply['refused'] = [];
    for (const r of reports) {
      if (r.seq !== this.appliedSeq + 1) continue; // out of order or already applied
      this.appliedSeq = r.seq;
      if (this.refuse.has(r.seq)) {
        refused.push({ seq: r.seq, code: 'VMP_CONFLICT', message: 'refused by test' });
        continue;
      }
      this.applied.push(r);
      if (r.type === 'instruction-done') this.instructions = this.instructions.filter((i) => i.id !== r.instructionId);
    }
    return { appliedSeq: this.appliedSeq, refused, instructions: [] };
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private maybeFail(method: Method): void {
    const left = this.failures[method] ?? 0;
    if (left > 0) {
      this.failures[method] = left - 1;
      throw new VmpilotError('VMP_UNREACHABLE', `fake ${method} failure`);
    }
  }
}

/** A payload assignment for tests, with `overrides` applied. */
export function fakeAssignment(id: number, overrides: Partial<Assignment> = {}): Assignment {
  return { id, name: `p${id}`, group: 'test', command: ['true'], env: {}, cores: 1, memoryMb: null, wallSec: null, ...overrides };
}
