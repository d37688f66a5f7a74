/**
 * The `opennebula` driver: a VM per instance from the shape's template
 * (`one.template.instantiate`), named by its key, with the user-data in its
 * CONTEXT (base64) and our labels in its user template (LABELS=vmpilot,
 * VMPILOT_KEY, VMPILOT_PREFIX). Listing reads the pool of the user's VMs
 * (`one.vmpool.info`, DONE ones left out) and keeps those whose labels are
 * this endpoint's; a create looks for its key there first, so a repeated
 * create finds the VM the first one made. Delete is `one.vm.action
 * terminate` (a clean shutdown: the agent stops its payloads in its grace),
 * then `terminate-hard` if the VM is still there halfway through the wait,
 * and returns once the VM is DONE.
 */
import type { Clock } from '../../../../shared/clock.js';
import { VmpilotError } from '../../../../shared/errors.js';
import type { AgentRef } from '../../../delivery/shell.js';
import type { OpenNebulaSettings } from '../../cloud-settings.js';
import type { CreateRequest, Driver, DriverResource } from '../../ports.js';
import { type CloudHttp, cloudHttp } from '../cloud-http.js';
import { cloudUserData, shapeOf } from '../cloud-user-data.js';
import { type OneVm, STATE_DONE, extraTemplate, parsePool, parseVm, resourceOf, templateContext } from './vm-xml.js';
import { OneRpc, oneErrorCode } from './xmlrpc.js';

/** What the opennebula driver is made of. */
export interface OpenNebulaDriverOptions {
  settings: OpenNebulaSettings;
  /** The prefix of this endpoint's keys (credential.ts resourcePrefix). */
  prefix: string;
  shapes: readonly { name: string; cores: number; memoryMb: number }[];
  agent: AgentRef;
  clock: Clock;
  /** How long a delete waits for the VM to be DONE (default 120 s). */
  deleteWaitMs?: number;
  http?: CloudHttp;
}

/** Pool filter: the connected user's VMs; state -1: all but DONE. */
const MINE = -3;
const NOT_DONE = -1;
const NO_EXISTS = 0x0400;

/** OpenNebula VMs as a driver. */
export class OpenNebulaDriver implements Driver {
  readonly kind = 'opennebula';
  private readonly http: CloudHttp;
  private readonly rpc: OneRpc;

  constructor(private readonly o: OpenNebulaDriverOptions) {
    this.http = o.http ?? cloudHttp({ caFile: o.settings.caFile });
    this.rpc = new OneRpc(o.settings, this.http);
  }

  async create(request: CreateRequest): Promise<DriverResource> {
    if (!request.key.startsWith(this.o.prefix)) throw new VmpilotError('VMP_INTERNAL', `key ${request.key} is not this endpoint's (${this.o.prefix}…)`);
    const existing = (await this.mine()).find((v) => v.name === request.key);
    if (existing) return resourceOf(existing);
    const shape = shapeOf(request, this.o.settings.shapes, this.o.shapes, 'opennebula');
    const templateId = shape.settings.templateId;
    const template = await this.rpc.call('one.template.info', [templateId, false, false]);
    const extra = extraTemplate({ context: templateContext(String(template)), userData: cloudUserData(request, this.o.agent), key: request.key, prefix: this.o.prefix });
    const id = await this.rpc.call('one.template.instantiate', [templateId, request.key, false, extra, false]);
    if (typeof id !== 'number') throw new VmpilotError('VMP_DRIVER', 'opennebula: one.template.instantiate answered no VM id');
    return { id: String(id), key: request.key, state: 'pending', createdAt: this.o.clock.now(), detail: `PENDING (template ${templateId})` };
  }

  async list(): Promise<DriverResource[]> {
    return (await this.mine()).map(resourceOf);
  }

  async describe(id: string): Promise<DriverResource | null> {
    const vm = await this.vm(id);
    return vm && vm.state !== STATE_DONE ? resourceOf(vm) : null;
  }

  async delete(id: string): Promise<void> {
    const vm = await this.vm(id);
    if (!vm || vm.state === STATE_DONE) return;
    await this.action('terminate', vm);
    const wait = this.o.deleteWaitMs ?? 120_000;
    const start = this.o.clock.now();
    let hard = false;
    for (;;) {
      const left = await this.vm(id);
      if (!left || left.state === STATE_DONE) return;
      const spent = this.o.clock.now() - start;
      if (!hard && spent >= wait / 2) {
        // the guest did not shut down (no ACPI, a hung agent): power it off
        hard = true;
        await this.action('terminate-hard', left);
      }
      if (spent >= wait) throw new VmpilotError('VMP_DRIVER', `opennebula: VM ${id} (${vm.name}) is still there ${Math.round(wait / 1000)} s after terminate; it is deleted again next cycle`);
      await this.o.clock.sleep(1000);
    }
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  private async action(action: string, vm: OneVm): Promise<void> {
    try {
      await this.rpc.call('one.vm.action', [action, Number(vm.id)]);
    } catch (err) {
      if (oneErrorCode(err) !== NO_EXISTS) throw err;
    }
  }

  /** This endpoint's VMs: by the labels in their user template, not by a look-alike name. */
  private async mine(): Promise<OneVm[]> {
    const xml = await this.rpc.call('one.vmpool.info', [MINE, -1, -1, NOT_DONE]);
    return parsePool(String(xml)).filter((v) => this.ours(v));
  }

  private ours(v: OneVm): boolean {
    return v.state !== STATE_DONE && v.userTemplate.VMPILOT_PREFIX === this.o.prefix && v.userTemplate.VMPILOT_KEY === v.name && v.name.startsWith(this.o.prefix);
  }

  private async vm(id: string): Promise<OneVm | null> {
    if (!/^\d{1,10}$/.test(id)) return null;
    try {
      const v = parseVm(String(await this.rpc.call('one.vm.info', [Number(id), false])));
      // a DONE VM of ours is still ours (so describe and delete know it is gone)
      return v.userTemplate.VMPILOT_PREFIX === this.o.prefix && v.userTemplate.VMPILOT_KEY === v.name ? v : null;
    } catch (err) {
      if (oneErrorCode(err) === NO_EXISTS) return null;
      throw err;
    }
  }
}
