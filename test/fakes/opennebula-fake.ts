/**
 * A FAKE OpenNebula front-end for the opennebula driver's tests: an
 * XML-RPC server on 127.0.0.1 (POST /RPC2, text/xml) answering the methods
 * the driver calls as the OpenNebula XML-RPC reference describes them:
 * one.template.info, one.template.instantiate, one.vm.info, one.vm.action
 * and one.vmpool.info, each answering `[success, value, error code]`, the
 * documents (VMTEMPLATE, VM, VM_POOL) with CDATA values inside TEMPLATE and
 * USER_TEMPLATE as the real ones have. Written from the reference, not
 * from OpenNebula's code; the XML-RPC is parsed and written here by hand
 * (fast-xml-parser), independently of the driver's XML-RPC library.
 *
 * A VM goes PENDING → ACTIVE/RUNNING after `bootMs`; with `runAgents` its
 * CONTEXT's USER_DATA is booted as a FakeMachine (a real agent process),
 * and the VM goes POWEROFF when that agent exits. `terminate` shuts it down
 * (SIGTERM to the agent, SHUTDOWN until it has gone), `terminate-hard`
 * kills it; then it is DONE.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { FakeMachine } from './cloud-vm.js';

export interface FakeVm {
  id: number;
  name: string;
  templateId: number;
  state: number;
  lcmState: number;
  stime: number;
  context: Record<string, string>;
  userTemplate: Record<string, string>;
  machine: FakeMachine | null;
}

export interface OpenNebulaFakeOptions {
  bootMs?: number;
  runAgents?: { machineDir: string } | null;
  /** The guest ignores a clean shutdown (terminate), as one without ACPI does. */
  ignoreShutdown?: boolean;
}

type RpcValue = string | number | boolean;

const USER = { name: 'pilot', password: 'fake-one-password' };
const AUTH = 0x0100;
const NO_EXISTS = 0x0400;
const ACTION = 0x0800;

const rpcParser = new XMLParser({ ignoreAttributes: true, parseTagValue: false, trimValues: false, isArray: (name) => name === 'param' });
const templateParser = new XMLParser({ ignoreAttributes: true, parseTagValue: false });
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const cdata = (s: string) => `<![CDATA[${s.replace(/]]>/g, ']]]]><![CDATA[>')}]]>`;

/** The fake front-end. */
export class OpenNebulaFake {
  readonly vms = new Map<number, FakeVm>();
  readonly templates = new Map<number, { name: string; cpu: number; memory: number; context: Record<string, string> }>([
    [7, { name: 'vmpilot-small', cpu: 1, memory: 2048, context: { NETWORK: 'YES', SSH_PUBLIC_KEY: '$USER[SSH_PUBLIC_KEY]' } }],
  ]);
  /** Every call's method name, in order. */
  readonly calls: string[] = [];
  url = '';
  static readonly user = USER;
  private nextId = 40;
  private readonly http: Server;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(readonly o: OpenNebulaFakeOptions = {}) {
    this.http = createServer((req, res) => void this.handle(req, res));
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.http.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.http.address() as AddressInfo).port}/RPC2`;
    return this;
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    await Promise.all([...this.vms.values()].map((v) => v.machine?.stop(2000)));
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  machineOf(name: string): FakeMachine | null {
    return [...this.vms.values()].find((v) => v.name === name)?.machine ?? null;
  }

  private later(ms: number, f: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      f();
    }, ms);
    this.timers.add(t);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await new Promise<string>((resolve) => {
      let b = '';
      req.on('data', (d: Buffer) => (b += d.toString()));
      req.on('end', () => resolve(b));
    });
    if (req.method !== 'POST' || new URL(req.url ?? '/', 'http://x').pathname !== '/RPC2') {
      res.statusCode = 405;
      return void res.end();
    }
    let method: string;
    let params: RpcValue[];
    try {
      ({ method, params } = parseCall(body));
    } catch (err) {
      return this.reply(res, fault(-32700, `parse error: ${(err as Error).message}`));
    }
    this.calls.push(method);
    const [session, ...args] = params;
    const fail = (message: string, code: number) => this.reply(res, answer([false, `[${method}] ${message}`, code]));
    if (session !== `${USER.name}:${USER.password}`) return fail("User couldn't be authenticated, aborting call.", AUTH);
    switch (method) {
      case 'one.template.info': {
        const t = this.templates.get(Number(args[0]));
        if (!t) return fail(`Error getting template [${String(args[0])}].`, NO_EXISTS);
        const ctx = Object.entries(t.context).map(([k, v]) => `<${k}>${cdata(v)}</${k}>`).join('');
        return this.reply(res, answer([true, `<VMTEMPLATE><ID>${String(args[0])}</ID><UID>0</UID><NAME>${esc(t.name)}</NAME><TEMPLATE><CONTEXT>${ctx}</CONTEXT><CPU>${cdata(String(t.cpu))}</CPU><MEMORY>${cdata(String(t.memory))}</MEMORY></TEMPLATE></VMTEMPLATE>`, 0]));
      }
      case 'one.template.instantiate':
        return this.instantiate(args, res, fail);
      case 'one.vm.info': {
        const vm = this.vms.get(Number(args[0]));
        if (!vm) return fail(`Error getting virtual machine [${String(args[0])}].`, NO_EXISTS);
        return this.reply(res, answer([true, vmXml(vm), 0]));
      }
      case 'one.vm.action':
        return this.action(String(args[0]), Number(args[1]), res, fail);
      case 'one.vmpool.info': {
        const [filter, start, end, state] = args.map(Number);
        if (filter !== -3 && filter !== -2 && filter !== -1) return fail('Invalid filter flag.', 0x1000);
        const list = [...this.vms.values()].filter((v) => (state === -1 ? v.state !== 6 : state === -2 ? true : v.state === state) && (start! < 0 || v.id >= start!) && (end! < 0 || v.id <= end!));
        return this.reply(res, answer([true, `<VM_POOL>${list.map(vmXml).join('')}</VM_POOL>`, 0]));
      }
      default:
        return this.reply(res, fault(-32601, `unknown method ${method}`));
    }
  }

  private instantiate(args: RpcValue[], res: ServerResponse, fail: (m: string, c: number) => void): void {
    const [templateId, name, hold, extra] = args;
    if (typeof templateId !== 'number' || typeof name !== 'string' || typeof hold !== 'boolean' || typeof extra !== 'string') return fail('Wrong parameter types.', 0x1000);
    const t = this.templates.get(templateId);
    if (!t) return fail(`Error getting template [${templateId}].`, NO_EXISTS);
    let doc: { TEMPLATE?: Record<string, unknown> };
    try {
      doc = templateParser.parse(extra) as typeof doc;
    } catch {
      return fail('Error parsing extra template', 0x4000);
    }
    if (!doc.TEMPLATE) return fail('Error parsing extra template: no TEMPLATE', 0x4000);
    const userTemplate: Record<string, string> = {};
    let context = { ...t.context };
    for (const [k, v] of Object.entries(doc.TEMPLATE)) {
      // merging a vector attribute replaces the template's
      if (k === 'CONTEXT') context = Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([a, b]) => [a, String(b)]));
      else userTemplate[k] = String(v);
    }
    const vm: FakeVm = { id: this.nextId++, name, templateId, state: hold ? 2 : 1, lcmState: 0, stime: Math.floor(Date.now() / 1000), context, userTemplate, machine: null };
    this.vms.set(vm.id, vm);
    if (!hold) this.later(this.o.bootMs ?? 200, () => this.boot(vm));
    this.reply(res, answer([true, vm.id, 0]));
  }

  private boot(vm: FakeVm): void {
    if (vm.state !== 1) return;
    vm.state = 3;
    vm.lcmState = 3;
    if (!this.o.runAgents) return;
    const raw = vm.context.USER_DATA ?? '';
    const userData = vm.context.USERDATA_ENCODING === 'base64' ? Buffer.from(raw, 'base64').toString('utf8') : raw;
    vm.machine = new FakeMachine(userData, path.join(this.o.runAgents.machineDir, vm.name));
    void vm.machine.exited.then(() => {
      if (vm.state === 3 && vm.lcmState === 3) {
        vm.state = 8; // the guest powered itself off
        vm.lcmState = 0;
      }
    });
  }

  private action(action: string, id: number, res: ServerResponse, fail: (m: string, c: number) => void): void {
    const vm = this.vms.get(id);
    if (!vm || vm.state === 6) return fail(`Error getting virtual machine [${id}].`, NO_EXISTS);
    const done = () => {
      vm.state = 6;
      vm.lcmState = 0;
    };
    if (action === 'terminate-hard') {
      void (vm.machine?.stop(0) ?? Promise.resolve()).then(done);
    } else if (action === 'terminate') {
      if (vm.state === 3 && vm.lcmState === 12) return fail('Wrong state to perform action', ACTION);
      if (vm.state === 3) {
        vm.lcmState = 12; // SHUTDOWN
        if (!this.o.ignoreShutdown) void (vm.machine?.stop(10_000) ?? Promise.resolve()).then(done);
      } else {
        this.later(50, done);
      }
    } else {
      return fail(`Action ${action} is not supported here.`, ACTION);
    }
    this.reply(res, answer([true, id, 0]));
  }

  private reply(res: ServerResponse, xml: string): void {
    res.statusCode = 200;
    res.setHeader('content-type', 'text/xml');
    res.end(xml);
  }
}

function vmXml(v: FakeVm): string {
  const attrs = (r: Record<string, string>) => Object.entries(r).map(([k, x]) => `<${k}>${cdata(x)}</${k}>`).join('');
  return `<VM><ID>${v.id}</ID><UID>5</UID><GID>1</GID><UNAME>${USER.name}</UNAME><NAME>${esc(v.name)}</NAME><LAST_POLL>0</LAST_POLL><STATE>${v.state}</STATE><LCM_STATE>${v.lcmState}</LCM_STATE><STIME>${v.stime}</STIME><ETIME>0</ETIME><DEPLOY_ID></DEPLOY_ID><TEMPLATE><CONTEXT>${attrs(v.context)}</CONTEXT><TEMPLATE_ID>${cdata(String(v.templateId))}</TEMPLATE_ID><VMID>${cdata(String(v.id))}</VMID></TEMPLATE><USER_TEMPLATE>${attrs(v.userTemplate)}</USER_TEMPLATE><HISTORY_RECORDS/></VM>`;
}

/** Read an XML-RPC methodCall of scalar params. */
function parseCall(xml: string): { method: string; params: RpcValue[] } {
  const doc = rpcParser.parse(xml) as { methodCall?: { methodName?: string; params?: { param?: { value: unknown }[] } | '' } };
  const call = doc.methodCall;
  if (!call || typeof call.methodName !== 'string') throw new Error('no methodCall/methodName');
  const params = call.params && typeof call.params === 'object' ? (call.params.param ?? []) : [];
  return { method: call.methodName, params: params.map((p) => scalar(p.value)) };
}

function scalar(v: unknown): RpcValue {
  if (typeof v === 'string') return v; // <value>text</value> is a string
  if (!v || typeof v !== 'object') throw new Error('a param without a value');
  const [type, raw] = Object.entries(v as Record<string, unknown>)[0] ?? [];
  const text = raw === undefined || raw === '' ? '' : String(raw);
  switch (type) {
    case 'string':
      return text;
    case 'int':
    case 'i4':
    case 'i8':
      if (!/^-?\d+$/.test(text.trim())) throw new Error(`bad ${type} ${text}`);
      return Number(text);
    case 'boolean':
      if (text !== '0' && text !== '1') throw new Error(`bad boolean ${text}`);
      return text === '1';
    default:
      throw new Error(`unexpected param type ${String(type)}`);
  }
}

function value(v: RpcValue): string {
  if (typeof v === 'boolean') return `<value><boolean>${v ? 1 : 0}</boolean></value>`;
  if (typeof v === 'number') return `<value><i4>${v}</i4></value>`;
  return `<value><string>${esc(v)}</string></value>`;
}

function answer(values: RpcValue[]): string {
  return `<?xml version="1.0"?>\n<methodResponse><params><param><value><array><data>${values.map(value).join('')}</data></array></value></param></params></methodResponse>`;
}

function fault(code: number, message: string): string {
  return `<?xml version="1.0"?>\n<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>${code}</int></value></member><member><name>faultString</name><value><string>${esc(message)}</string></value></member></struct></value></fault></methodResponse>`;
}
