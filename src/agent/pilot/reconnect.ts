/**
 * Back from an outage: what happened while the server was away reaches it
 * before the pilot asks for new work. The reports that waited on disk
 * (payloads started and ended meanwhile, state changes) go out first, in
 * their order (the outbox sends by seq), so the server's view of this pilot
 * is whole again when it hands out the next payload.
 */
import type { ContactTracker } from './contact.js';
import type { Outbox } from '../state/outbox.js';

/**
 * Deliver the outbox while the server answers and takes reports. False when
 * a call got no answer (the server is still away: back off and try again);
 * true once the outbox is empty, or when the server answered but took
 * nothing more (the outbox keeps trying on its own; asking for work need
 * not wait for it).
 */
export async function reportsFirst(outbox: Pick<Outbox, 'pending' | 'flushOnce'>, contact: Pick<ContactTracker, 'unreachable'>): Promise<boolean> {
  while (outbox.pending.length > 0) {
    const before = outbox.pending.length;
    await outbox.flushOnce();
    if (contact.unreachable) return false;
    if (outbox.pending.length >= before) return true;
  }
  return true;
}
