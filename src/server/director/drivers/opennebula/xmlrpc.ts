/**
 * OpenNebula's XML-RPC API for the opennebula driver: the method calls are
 * written and their answers read by @foxglove/xmlrpc (a maintained XML-RPC
 * library: serializeMethodCall and Deserializer), sent over our undici
 * client (cloud-http.ts: a time limit, the cloud's CA). Every OpenNebula
 * method answers an array whose first element says whether it succeeded:
 * `[true, value, 0]`, or `[false, "error text", code]`; a failure becomes
 * VMP_DRIVER with that text and the code's name.
 */
import { Deserializer, serializeMethodCall, type XmlRpcValue } from '@foxglove/xmlrpc';
import { VmpilotError, describeError } from '../../../../shared/errors.js';
import type { OpenNebulaSettings } from '../../cloud-settings.js';
import { type CloudHttp, readSecret, redact } from '../cloud-http.js';

/** OpenNebula's error codes (the third element of a failed answer). */
export const ONE_ERRORS: Readonly<Record<number, string>> = {
  0x0100: 'AUTHENTICATION',
  0x0200: 'AUTHORIZATION',
  0x0400: 'NO_EXISTS',
  0x0800: 'ACTION',
  0x1000: 'XML_RPC_API',
  0x2000: 'INTERNAL',
  0x4000: 'ALLOCATE',
  0x8000: 'LOCKED',
};

/** A failed OpenNebula call's code, for callers that branch on it (e.g. NO_EXISTS on delete). */
export function oneErrorCode(err: unknown): number | null {
  return err instanceof VmpilotError && typeof err.details.oneCode === 'number' ? err.details.oneCode : null;
}

/** The XML-RPC client of one endpoint. */
export class OneRpc {
  constructor(
    private readonly s: OpenNebulaSettings,
    private readonly http: CloudHttp,
  ) {}

  /** `method` with the session first, then `params`; the answer's value (its second element). */
  async call(method: string, params: XmlRpcValue[]): Promise<XmlRpcValue> {
    const session = `${this.s.user}:${await readSecret(this.s.password, 'opennebula password')}`;
    const res = await this.http.send('POST', this.s.endpoint, { headers: { 'content-type': 'text/xml' }, body: serializeMethodCall(method, [session, ...params]) });
    const where = `opennebula ${method} at ${redact(this.s.endpoint)}`;
    if (res.status !== 200) throw new VmpilotError('VMP_DRIVER', `${where}: HTTP ${res.status}: ${res.text.replace(/\s+/g, ' ').trim().slice(0, 300)}`);
    let answer: XmlRpcValue;
    try {
      answer = await new Deserializer().deserializeMethodResponse(res.text);
    } catch (err) {
      throw new VmpilotError('VMP_DRIVER', `${where}: ${describeError(err)}`, { cause: err });
    }
    if (!Array.isArray(answer) || typeof answer[0] !== 'boolean') throw new VmpilotError('VMP_DRIVER', `${where}: the answer is not OpenNebula's [success, value, code]`);
    if (!answer[0]) {
      const code = typeof answer[2] === 'number' ? answer[2] : null;
      const name = code === null ? '' : ` (${ONE_ERRORS[code] ?? `code ${code}`})`;
      throw new VmpilotError('VMP_DRIVER', `${where}: ${String(answer[1])}${name}`, { details: { oneCode: code } });
    }
    return answer[1];
  }
}
