/**
 * Who the pilot is to the server: the owner of the identity part of the
 * saved state (pilot id, credential, lease, whether the server takes
 * `evicted`, when it halted) and of what registration taught it (registered
 * or not, the bound on a held-open match), and of the registering anew
 * after another sender was seen with its credential (pilot/identity-fault.ts).
 */
import type { RegisterReply } from '../../protocol/index.js';
import { describeError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { StateKeeper } from '../state/state-keeper.js';

/** The pilot's identity and what the server told it at registration. */
export class Session {
  private known = false;
  private matchWait = 20;
  private fault: string | null = null;
  private faults = 0;

  constructor(
    private readonly keeper: StateKeeper,
    private readonly log: Logger,
  ) {}

  /** Whether the server knows this pilot (reports can be sent). */
  get registered(): boolean {
    return this.known;
  }

  /** The server's bound on a held-open match (RegisterReply.matchWaitMaxSec), s. */
  get matchWaitSec(): number {
    return this.matchWait;
  }

  /** Why the pilot is registering anew (another sender holds its credential), while it does; else null. */
  get identityFault(): string | null {
    return this.fault;
  }

  /** How many times this run began registering anew after such a fault. */
  get identityFaults(): number {
    return this.faults;
  }

  /** Another sender holds the credential: registering anew begins; false when it is under way already. */
  faultSeen(why: string): boolean {
    if (this.fault !== null) return false;
    this.fault = why;
    this.faults++;
    return true;
  }

  /** Registering anew is over (or gave up). */
  faultHandled(): void {
    this.fault = null;
  }

  /** The pilot id now, or null. */
  get pilotId(): number | null {
    return this.keeper.state.pilotId;
  }

  /** The lease the server gave (s), or null. */
  get leaseSec(): number | null {
    return this.keeper.state.leaseSec ?? null;
  }

  /** Carrying on as the pilot of the previous run (its identity is in the state already). */
  resumed(): void {
    this.known = true;
  }

  /** The server no longer knows this identity (refused, or given up): register anew. */
  unregistered(): void {
    this.known = false;
  }

  /** Registered: keep the identity and the lease, saved. */
  async registeredAs(reply: RegisterReply): Promise<void> {
    this.known = true;
    this.matchWait = reply.matchWaitMaxSec;
    const state = this.keeper.state;
    state.pilotId = reply.pilotId;
    state.credential = reply.credential;
    state.leaseSec = reply.leaseSec ?? null;
    state.acceptsEvicted = reply.acceptsEvicted === true;
    await this.keeper.persist();
  }

  /** A renewed credential in a heartbeat reply (the control plane already uses it): keep it with the state. */
  keepCredential(reply: { credential?: string }): void {
    if (!reply.credential || reply.credential === this.keeper.state.credential) return;
    this.keeper.state.credential = reply.credential;
    void this.keeper.persist().catch((err: unknown) => this.log.error({ err: describeError(err) }, 'state not saved'));
  }

  /** Remember in the state that this pilot halted (a restart after it registers anew). */
  async markHalted(now: number): Promise<void> {
    this.keeper.state.haltedAt = now;
    await this.keeper.persist();
  }
}
