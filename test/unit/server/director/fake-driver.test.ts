import type { CreateRequest } from '../../../../src/server/director/ports.js';
import { FakeCloud, FakeDriver } from '../../../../src/server/director/drivers/fake.js';
import { FakeClock } from '../../../../src/shared/clock.js';
import { driverContract } from './driver-contract.js';

const request = (key: string): CreateRequest => ({
  key,
  cores: 2,
  memoryMb: 2000,
  lifetimeSec: 3600,
  bootstrap: { serverUrl: 'http://127.0.0.1:9', credential: 'vmpi_x', idleTimeoutSec: 60, graceSec: 5, lifetimeSec: 3600 },
});

driverContract('fake', async () => {
  const cloud = new FakeCloud(new FakeClock());
  return {
    driver: new FakeDriver(cloud, 'vmp-test-a-'),
    prefix: 'vmp-test-a-',
    other: { driver: new FakeDriver(cloud, 'vmp-test-b-'), prefix: 'vmp-test-b-' },
    request,
    until: async (what, check) => {
      const v = await check();
      if (!v) throw new Error(`not so: ${what}`);
      return v;
    },
    boot: async (r) => cloud.run(r.id),
    halt: async (r) => cloud.end(r.id),
    nothingLeft: async (r) => {
      if (cloud.resources.has(r.id)) throw new Error(`${r.id} is still in the fake cloud`);
    },
    close: async () => undefined,
  };
});
