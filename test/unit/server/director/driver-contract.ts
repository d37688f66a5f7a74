/**
 * The one contract every director driver keeps (ports.ts `Driver`), as a
 * suite each driver's test runs against its own subject: the fake in the
 * unit tests, `process` in the integration tests, `slurm` through a real
 * sshd (test/integration/delivery/director-slurm.test.ts) and `qemu`
 * (test/vm/director-qemu.vm.ts, whose halt leg is director-serve.vm.ts).
 *
 * - a create returns a resource named by its key, listed and described;
 * - a create with a used key returns the same resource, never a second;
 * - list shows only this endpoint's resources;
 * - the machine comes up, and (when the subject can make it) halts by itself: then it is ended;
 * - after delete, nothing of it runs, list does not show it, describe says
 *   it is gone or ended; deleting again, or an id never made, succeeds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CreateRequest, Driver, DriverResource } from '../../../../src/server/director/ports.js';

/** What one driver's run of the contract is given. */
export interface ContractSubject {
  driver: Driver;
  /** The prefix of `driver`'s keys. */
  prefix: string;
  /** A driver of another endpoint on the same backend (its resources are not `driver`'s). */
  other?: { driver: Driver; prefix: string };
  /** A request for a machine named `key`. */
  request(key: string): CreateRequest;
  /** Wait (polling the real system) until `check` holds; the fake moves its cloud on instead. */
  until<T>(what: string, check: () => Promise<T | false | undefined>): Promise<T>;
  /** For the fake: make the machine run (a real one boots by itself). */
  boot?(r: DriverResource): Promise<void>;
  /** Make the machine's pilot halt by itself (e.g. queue nothing and let it idle out); absent: not tested. */
  halt?(r: DriverResource): Promise<void>;
  /** Check that nothing of the resource is left on the machine that ran it (no process, no files). */
  nothingLeft?(r: DriverResource): Promise<void>;
  /** Release the subject (servers, daemons, temporary files). */
  close(): Promise<void>;
}

/** Run the driver contract against the subject `make` returns. */
export function driverContract(name: string, make: () => Promise<ContractSubject>, timeoutMs = 120_000): void {
  describe(`driver contract: ${name}`, () => {
    let s: ContractSubject;
    let n = 0;
    const key = () => `${s.prefix}c${++n}${Math.floor(Math.random() * 1e6).toString(36)}`;
    beforeAll(async () => {
      s = await make();
    }, timeoutMs);
    afterAll(async () => {
      await s?.close();
    }, timeoutMs);

    it('creates a resource named by its key, lists and describes it, and only under its own endpoint', async () => {
      const k = key();
      const r = await s.driver.create(s.request(k));
      expect(r.key).toBe(k);
      expect(['pending', 'running']).toContain(r.state);
      const listed = await s.until('the driver to list it', async () => (await s.driver.list()).find((x) => x.key === k));
      expect(listed.id).toBe(r.id);
      expect((await s.driver.describe(r.id))?.key).toBe(k);
      if (s.other) expect((await s.other.driver.list()).map((x) => x.key)).not.toContain(k);
      await s.driver.delete(r.id);
    }, timeoutMs);

    it('a create with a used key returns the same resource, never a second one', async () => {
      const k = key();
      const a = await s.driver.create(s.request(k));
      const b = await s.driver.create(s.request(k));
      expect(b.id).toBe(a.id);
      const mine = (await s.driver.list()).filter((x) => x.key === k);
      expect(mine).toHaveLength(1);
      await s.driver.delete(a.id);
    }, timeoutMs);

    it('refuses a key of another endpoint', async () => {
      if (!s.other) return;
      await expect(s.driver.create(s.request(`${s.other.prefix}x1`))).rejects.toThrow();
    }, timeoutMs);

    it('the machine comes up; after delete nothing of it runs, it is not listed, and deleting again succeeds', async () => {
      const k = key();
      const r = await s.driver.create(s.request(k));
      if (s.boot) await s.boot(r);
      await s.until('the machine to run', async () => (await s.driver.describe(r.id))?.state === 'running');
      await s.driver.delete(r.id);
      expect((await s.driver.list()).map((x) => x.key)).not.toContain(k);
      const after = await s.driver.describe(r.id);
      expect(after === null || after.state === 'ended').toBe(true);
      await s.nothingLeft?.(r);
      await s.driver.delete(r.id);
      await s.driver.delete(`${s.prefix}never-made`);
    }, timeoutMs);

    it('a machine whose pilot halts by itself is ended, then deleted', async () => {
      if (!s.halt) return;
      const k = key();
      const r = await s.driver.create(s.request(k));
      if (s.boot) await s.boot(r);
      await s.halt(r);
      // batch systems forget finished jobs from their listing: ended, or gone
      await s.until('the machine to end', async () => {
        const d = await s.driver.describe(r.id);
        return d === null || d.state === 'ended';
      });
      await s.driver.delete(r.id);
      expect((await s.driver.list()).map((x) => x.key)).not.toContain(k);
      await s.nothingLeft?.(r);
    }, timeoutMs);
  });
}
