/**
 * What every Store does when several server processes change one database
 * at the same moment (the third part of store-contract.ts): two stores on
 * one database, as two replicas are. Many concurrent claims never hand out
 * one payload twice and leave none queued (and, as a property over random
 * queues and offers, leave queued only what fits no claimer); one report sent through both
 * is applied once; one instance credential registers one pilot; one drain
 * and one director lease however many ask at once. On SQLite the calls
 * take turns on the file's write lock; on PostgreSQL they truly overlap.
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fairSharePicker } from '../../../../src/server/queue/pick.js';
import type { Store } from '../../../../src/server/store/store.js';
import { registration } from '../helpers.js';
import { draft } from '../director/store-contract.js';
import { T, offer, type MakeWorld, type StoreWorld } from './store-contract.js';

/** The concurrency part of the contract. */
export function concurrencyContract(name: string, make: MakeWorld): void {
  describe(`Store contract, concurrency: ${name}`, () => {
    let world: StoreWorld;
    let a: Store;
    let b: Store;
    beforeEach(async () => {
      world = await make();
      a = await world.open();
      b = await world.open();
    });
    afterEach(async () => {
      await world.close();
    });

    it('many concurrent claims on two stores hand out every payload exactly once and leave none queued', async () => {
      const groups = ['atlas', 'cms', 'lhcb'];
      const submitted = await a.submitPayloads(
        Array.from({ length: 90 }, (_, i) => ({ command: ['x'], group: groups[i % 3]!, priority: i % 4 === 0 ? 1 : 0 })),
        T,
      );
      const pilots: number[] = [];
      for (let i = 0; i < 12; i++) pilots.push((await a.createPilot(registration({ hostname: `n${i}` }), `claim-${i}`, T)).id);
      const picker = fairSharePicker(new Map([['atlas', 2], ['cms', 1], ['lhcb', 1]]));
      const handed: { id: number; pilot: number }[] = [];
      // each pilot claims through one of the two stores until the queue is empty; a claim that found every
      // candidate locked by another one answers null, and its pilot asks again, as a real one does
      await Promise.all(
        pilots.map(async (pilot, i) => {
          const s = i % 2 === 0 ? a : b;
          for (let tries = 0; tries < 10_000; tries++) {
            const got = await s.claimPayload(pilot, offer, picker, T + 1);
            if (got) handed.push({ id: got.id, pilot });
            else if ((await s.queuedCount()) === 0) return;
          }
          throw new Error(`pilot ${pilot} gave up with payloads still queued`);
        }),
      );
      const ids = handed.map((h) => h.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect([...ids].sort((x, y) => x - y)).toEqual([...submitted].sort((x, y) => x - y));
      expect(await b.queuedCount()).toBe(0);
      // every payload is assigned, to the pilot that was handed it, with one attempt and one assignment in its history
      for (const { id, pilot } of handed) {
        expect(await b.getPayload(id)).toMatchObject({ state: 'assigned', pilotId: pilot, attempts: 1 });
        expect((await a.payloadHistory(id)).filter((h) => h.state === 'assigned')).toHaveLength(1);
      }
    });

    it('property: concurrent claimers on two stores, with random queues and offers, never share a payload and leave queued only what fits none of them', async () => {
      let run = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.record({ group: fc.constantFrom('a', 'b', 'c'), priority: fc.integer({ min: -2, max: 2 }), cores: fc.integer({ min: 1, max: 4 }) }), {
            minLength: 1,
            maxLength: 30,
          }),
          fc.array(fc.record({ freeCores: fc.integer({ min: 1, max: 4 }), groups: fc.subarray(['a', 'b', 'c'], { minLength: 1 }), store: fc.boolean() }), {
            minLength: 2,
            maxLength: 8,
          }),
          async (payloads, claimers) => {
            // each run its own groups, so what earlier runs left queued fits no claimer of this one
            const g = (name: string) => `run${run}-${name}`;
            run++;
            const ids = await a.submitPayloads(
              payloads.map((p) => ({ command: ['x'], group: g(p.group), priority: p.priority, cores: { min: p.cores, max: p.cores, wholeNode: false } })),
              T,
            );
            const wanted = new Map(ids.map((id, i) => [id, payloads[i]!]));
            const offers = claimers.map((c) => ({ ...offer, freeCores: c.freeCores, groups: c.groups.map(g) }));
            const fits = (id: number, i: number) => {
              const p = wanted.get(id)!;
              return p.cores <= claimers[i]!.freeCores && claimers[i]!.groups.includes(p.group);
            };
            const handed: number[] = [];
            await Promise.all(
              claimers.map(async (c, i) => {
                const s = c.store ? a : b;
                const pilot = (await s.createPilot(registration(), `prop-${run}-${i}`, T)).id;
                for (let tries = 0; tries < 10_000; tries++) {
                  const got = await s.claimPayload(pilot, offers[i]!, fairSharePicker(), T + 1);
                  if (got) {
                    handed.push(got.id);
                    continue;
                  }
                  // nothing handed: done when nothing queued fits this claimer (else the candidates were locked by another claim)
                  const queued = (await s.listPayloads({ state: 'queued' })).filter((p) => wanted.has(p.id));
                  if (!queued.some((p) => fits(p.id, i))) return;
                }
                throw new Error(`claimer ${i} gave up`);
              }),
            );
            expect(new Set(handed).size).toBe(handed.length);
            expect(handed.every((id) => wanted.has(id))).toBe(true);
            const left = ids.filter((id) => !handed.includes(id));
            // what is left fits no claimer, and is still queued
            expect(left.filter((id) => claimers.some((_, i) => fits(id, i)))).toEqual([]);
            for (const id of left) expect((await b.getPayload(id))?.state).toBe('queued');
          },
        ),
        { numRuns: 12 },
      );
    });

    it('applies one report sent through both stores at once exactly once', async () => {
      const p = (await a.createPilot(registration(), 'p', T)).id;
      const { id } = await a.submitPayload({ command: ['x'] }, T);
      await a.claimPayload(p, offer, fairSharePicker(), T);
      await a.applyReport(p, { seq: 1, at: T, type: 'payload-started', payloadId: id }, T);
      const ended = { seq: 2, at: T + 5000, type: 'payload-ended', payloadId: id, exitCode: 0, signal: null } as const;
      const outcomes = await Promise.all([a.applyReport(p, ended, T + 5000), b.applyReport(p, ended, T + 5000)]);
      expect(outcomes.map((o) => o.kind).sort()).toEqual(['applied', 'duplicate']);
      expect((await b.payloadHistory(id)).map((h) => h.state)).toEqual(['queued', 'assigned', 'running', 'done']);
      expect(await a.appliedSeq(p)).toBe(2);
      expect((await a.accounting({}))[0]).toMatchObject({ done: 1, coreSec: 5 });
    });

    it('registers one pilot with one instance credential, however many registrations race', async () => {
      const inst = await a.createInstance(draft({ credentialHash: 'instance-hash' }), T);
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? a : b).registerInstancePilot('instance-hash', registration(), `pilot-${i}`, T + 1)),
      );
      const won = results.filter((r) => r !== null);
      expect(won).toHaveLength(1);
      expect(await b.countPilots({})).toBe(1);
      expect(await b.getInstance(inst.id)).toMatchObject({ pilotId: won[0]!.pilot.id });
    });

    it('adds one drain however many ask at once, and gives the director lease to one holder', async () => {
      const p = (await a.createPilot(registration(), 'p', T)).id;
      const drains = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? a : b).drainOnce(p, { type: 'drain', reason: `r${i}` }, T)));
      expect(drains.filter((d) => !d.existing)).toHaveLength(1);
      expect(new Set(drains.map((d) => d.instruction.id)).size).toBe(1);
      expect(await b.pendingInstructions(p)).toHaveLength(1);
      // round after round the lease has run out, and six servers race for it: each round, one holds it
      for (let round = 0; round < 20; round++) {
        const now = T + round * 60_000;
        const leases = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? a : b).holdLease(`server-${i}`, now + 30_000, now)));
        expect(new Set(leases.map((l) => l.holder)).size, `round ${round}`).toBe(1);
      }
    });
  });
}
