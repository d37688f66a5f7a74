/**
 * The opennebula driver against a fake OpenNebula front-end
 * (test/fakes/opennebula-fake.ts) over real XML-RPC on 127.0.0.1: the
 * driver contract, then the instantiate call (template, name, the user-data
 * in the template's own CONTEXT, our labels), errors in OpenNebula's words,
 * and a guest that ignores the clean shutdown.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpenNebulaSettings } from '../../../../src/server/director/cloud-settings.js';
import { resourcePrefix } from '../../../../src/server/director/credential.js';
import { OpenNebulaDriver } from '../../../../src/server/director/drivers/opennebula/driver.js';
import { endpointsFrom } from '../../../../src/server/director/endpoint-config.js';
import type { CreateRequest } from '../../../../src/server/director/ports.js';
import { systemClock } from '../../../../src/shared/clock.js';
import { isVmpilotError } from '../../../../src/shared/errors.js';
import { bootFacts } from '../../../fakes/cloud-vm.js';
import { OpenNebulaFake } from '../../../fakes/opennebula-fake.js';
import { TEMPLATE_AGENT } from '../delivery/examples.js';
import { driverContract } from './driver-contract.js';

function driver(fake: OpenNebulaFake, endpoint = 'nebula', extra: Record<string, unknown> = {}, deleteWaitMs = 20_000): OpenNebulaDriver {
  const ep = endpointsFrom(
    { [endpoint]: { driver: 'opennebula', opennebula: { endpoint: fake.url, user: OpenNebulaFake.user.name, password: OpenNebulaFake.user.password, shapes: { small: { templateId: 7 } }, ...extra }, shapes: { small: { cores: 1, memoryMb: 2048 } } } },
    'test',
  )[0]!;
  return new OpenNebulaDriver({ settings: ep.driver as OpenNebulaSettings, prefix: resourcePrefix('test', endpoint), shapes: ep.shapes, agent: TEMPLATE_AGENT, clock: systemClock, deleteWaitMs });
}

const request = (key: string): CreateRequest => ({
  key,
  shape: 'small',
  cores: 1,
  memoryMb: 2048,
  lifetimeSec: 3600,
  bootstrap: { serverUrl: 'http://127.0.0.1:9', credential: 'vmpi_nebulacredential0123456789', idleTimeoutSec: 60, graceSec: 5, lifetimeSec: 3600 },
});

const until = async <T,>(what: string, check: () => Promise<T | false | undefined>): Promise<T> => {
  const end = Date.now() + 20_000;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

driverContract('opennebula (fake front-end)', async () => {
  const fake = await new OpenNebulaFake({ bootMs: 100 }).start();
  const a = driver(fake);
  const b = driver(fake, 'other');
  return {
    driver: a,
    prefix: resourcePrefix('test', 'nebula'),
    other: { driver: b, prefix: resourcePrefix('test', 'other') },
    request,
    until,
    nothingLeft: async (r) => {
      expect(fake.vms.get(Number(r.id))?.state).toBe(6);
    },
    close: async () => {
      await a.close();
      await b.close();
      await fake.stop();
    },
  };
});

describe('opennebula driver', () => {
  let fake: OpenNebulaFake;
  beforeAll(async () => {
    fake = await new OpenNebulaFake({ bootMs: 50 }).start();
  });
  afterAll(async () => {
    await fake.stop();
  });

  it('instantiates the shape\'s template named by the key, the user-data base64 in the template\'s own CONTEXT, our labels in the user template', async () => {
    const d = driver(fake);
    const key = `${resourcePrefix('test', 'nebula')}inst1`;
    const r = await d.create(request(key));
    const vm = fake.vms.get(Number(r.id))!;
    expect(vm).toMatchObject({ name: key, templateId: 7, userTemplate: { LABELS: 'vmpilot', VMPILOT_KEY: key, VMPILOT_PREFIX: resourcePrefix('test', 'nebula') } });
    // the template's context is kept: merging a CONTEXT replaces the template's
    expect(vm.context).toMatchObject({ NETWORK: 'YES', SSH_PUBLIC_KEY: '$USER[SSH_PUBLIC_KEY]', USERDATA_ENCODING: 'base64' });
    expect(bootFacts(Buffer.from(vm.context.USER_DATA!, 'base64').toString('utf8'))).toMatchObject({ credential: 'vmpi_nebulacredential0123456789', configDoc: { server: 'http://127.0.0.1:9', cores: 1 } });
    expect(fake.calls.slice(-3)).toEqual(['one.vmpool.info', 'one.template.info', 'one.template.instantiate']);
    await until('it to run', async () => (await d.describe(r.id))?.state === 'running');
    expect((await d.describe(r.id))?.detail).toBe('ACTIVE (LCM_STATE 3)');
    await d.delete(r.id);
    await d.close();
  });

  it('says what OpenNebula said: a refused login, an unknown template', async () => {
    const bad = driver(fake, 'nebula', { password: 'wrong' });
    const err = await bad.list().catch((e: unknown) => e);
    expect(isVmpilotError(err, 'VMP_DRIVER')).toBe(true);
    expect((err as Error).message).toBe(`opennebula one.vmpool.info at ${fake.url}: [one.vmpool.info] User couldn't be authenticated, aborting call. (AUTHENTICATION)`);
    await bad.close();
    const d = driver(fake, 'nebula', { shapes: { small: { templateId: 99 } } });
    await expect(d.create(request(`${resourcePrefix('test', 'nebula')}tpl1`))).rejects.toThrow(`opennebula one.template.info at ${fake.url}: [one.template.info] Error getting template [99]. (NO_EXISTS)`);
    await d.close();
  });

  it('a guest that ignores the clean shutdown is terminated hard, and the delete returns once the VM is DONE', async () => {
    const stubborn = await new OpenNebulaFake({ bootMs: 50, ignoreShutdown: true }).start();
    try {
      const d = driver(stubborn, 'nebula', {}, 4000);
      const r = await d.create(request(`${resourcePrefix('test', 'nebula')}hard1`));
      await until('it to run', async () => (await d.describe(r.id))?.state === 'running');
      await d.delete(r.id);
      expect(stubborn.vms.get(Number(r.id))!.state).toBe(6);
      expect(stubborn.calls.filter((c) => c === 'one.vm.action')).toHaveLength(2);
      expect(await d.describe(r.id)).toBeNull();
      await d.close();
    } finally {
      await stubborn.stop();
    }
  });
});
