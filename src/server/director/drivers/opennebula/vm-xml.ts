/**
 * The pure parts of the opennebula driver: reading the VM pool, a VM and a
 * template as OpenNebula's XML documents (VM_POOL/VM with ID, NAME, STATE,
 * LCM_STATE, STIME, TEMPLATE/CONTEXT, USER_TEMPLATE; VMTEMPLATE/TEMPLATE),
 * what a VM's state means to the director, and the extra template of a new
 * VM: the template's own CONTEXT with the user-data added, and our labels.
 */
import { XMLParser } from 'fast-xml-parser';
import { VmpilotError } from '../../../../shared/errors.js';
import type { DriverResource } from '../../ports.js';

/** One VM as the driver needs it. */
export interface OneVm {
  id: string;
  name: string;
  state: number;
  lcmState: number;
  /** Start time (ms), or null. */
  startedAt: number | null;
  userTemplate: Readonly<Record<string, string>>;
}

const parser = new XMLParser({ ignoreAttributes: true, parseTagValue: false, trimValues: false, isArray: (name, jpath) => jpath === 'VM_POOL.VM' });

type Node = Record<string, unknown>;

function parse(xml: string, root: string): Node[] {
  let doc: Node;
  try {
    doc = parser.parse(xml) as Node;
  } catch (err) {
    throw new VmpilotError('VMP_DRIVER', `opennebula: the ${root} document is not XML: ${(err as Error).message}`);
  }
  const r = doc[root];
  if (root === 'VM_POOL') return r === '' || r === undefined ? [] : (((r as Node).VM ?? []) as Node[]);
  if (!r || typeof r !== 'object') throw new VmpilotError('VMP_DRIVER', `opennebula: expected a ${root} document`);
  return [r as Node];
}

/** The text children of an element (nested ones left out), as strings. */
function flat(n: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (n && typeof n === 'object') for (const [k, v] of Object.entries(n as Node)) if (typeof v === 'string' || typeof v === 'number') out[k] = String(v);
  return out;
}

function vmOf(n: Node): OneVm {
  const stime = Number(n.STIME);
  return {
    id: String(n.ID),
    name: String(n.NAME ?? ''),
    state: Number(n.STATE),
    lcmState: Number(n.LCM_STATE),
    startedAt: Number.isFinite(stime) && stime > 0 ? stime * 1000 : null,
    userTemplate: flat(n.USER_TEMPLATE),
  };
}

/** The VMs of a one.vmpool.info answer. */
export function parsePool(xml: string): OneVm[] {
  return parse(xml, 'VM_POOL').map(vmOf);
}

/** The VM of a one.vm.info answer. */
export function parseVm(xml: string): OneVm {
  return vmOf(parse(xml, 'VM')[0]!);
}

/** The CONTEXT attributes of a one.template.info answer (empty when it has none). */
export function templateContext(xml: string): Record<string, string> {
  const t = parse(xml, 'VMTEMPLATE')[0]!;
  return flat(((t.TEMPLATE ?? {}) as Node).CONTEXT);
}

/** VM states (STATE) by number. */
const STATES = ['INIT', 'PENDING', 'HOLD', 'ACTIVE', 'STOPPED', 'SUSPENDED', 'DONE', 'FAILED', 'POWEROFF', 'UNDEPLOYED', 'CLONING', 'CLONING_FAILURE'];
/** DONE: the VM is gone (not listed). */
export const STATE_DONE = 6;

/** A VM as the director sees it: pending until it RUNS, ended once it is off or failed. */
export function resourceOf(vm: OneVm): DriverResource {
  const s = STATES[vm.state] ?? `STATE ${vm.state}`;
  let state: DriverResource['state'];
  if (vm.state === 3) {
    // ACTIVE: LCM_INIT, PROLOG and BOOT come before RUNNING; EPILOG, SHUTDOWN and SHUTDOWN_POWEROFF are on the way off; 36 and up are failures
    state = vm.lcmState <= 2 ? 'pending' : vm.lcmState === 11 || vm.lcmState === 12 || vm.lcmState === 18 || vm.lcmState >= 36 ? 'ended' : 'running';
  } else {
    state = vm.state <= 2 || vm.state === 10 ? 'pending' : 'ended';
  }
  return { id: vm.id, key: vm.name, state, createdAt: vm.startedAt, detail: vm.state === 3 ? `${s} (LCM_STATE ${vm.lcmState})` : s };
}

const xmlText = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * The extra template of one.template.instantiate (XML): the template's own
 * CONTEXT (merging a CONTEXT replaces the template's, so it is sent whole)
 * with the user-data base64 (USER_DATA, USERDATA_ENCODING), and our labels
 * in the VM's user template.
 */
export function extraTemplate(o: { context: Readonly<Record<string, string>>; userData: string; key: string; prefix: string }): string {
  const context: Record<string, string> = { NETWORK: 'YES', ...o.context, USER_DATA: Buffer.from(o.userData, 'utf8').toString('base64'), USERDATA_ENCODING: 'base64' };
  delete context.USERDATA; // an older spelling would win over ours in some images
  const el = (k: string, v: string) => `<${k}>${xmlText(v)}</${k}>`;
  for (const k of Object.keys(context)) if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) delete context[k];
  return `<TEMPLATE><CONTEXT>${Object.entries(context).map(([k, v]) => el(k, v)).join('')}</CONTEXT>${el('LABELS', 'vmpilot')}${el('VMPILOT_KEY', o.key)}${el('VMPILOT_PREFIX', o.prefix)}</TEMPLATE>`;
}
