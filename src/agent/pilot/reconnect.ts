/**
 * Back from an outage: what happened while the server was away reaches it
 * before the pilot asks for new work. The reports that waited on disk
 * (payloads started and ended meanwhile, state changes) go out first, in
 * their order (the outbox sends by seq), so the server's view of this pilot
 * is whole again when it hands out the next payload.
 */
import type { PilotCore } from './core.js';

/**
 * Deliver the outbox while the server answers and takes reports. False when
 * a call got no answer (the server is still away: back off and try again);
 * true once the outbox is empty, or when the server answered but took
 * nothing more (the outbox keeps trying on its own; asking for work need
 * not wait for it).
 */
export async function reportsFirst(p: PilotCore): Promise<boolean> {
  while (p.outbox.pending.length > 0) {
    const before = p.outbox.pending.length;
    await p.outbox.flushOnce();
    if (p.control.unreachable) return false;
    if (p.outbox.pending.length >= before) return true;
  }
  return true;
}
