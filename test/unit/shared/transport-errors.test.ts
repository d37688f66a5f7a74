import { describe, expect, it } from 'vitest';
import { transportReason } from '../../../src/shared/transport-errors.js';

const err = (code: string, message = code) => Object.assign(new Error(message), { code });

describe('transportReason', () => {
  const url = new URL('https://pilots.example.org:8080');
  it('says a TLS handshake met a plain http server, in words, with what to do', () => {
    const openssl = '80EC30A7847F0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../deps/openssl/openssl/ssl/record/ssl3_record.c:350:';
    for (const e of [err('ERR_SSL_WRONG_VERSION_NUMBER', openssl), err('EPROTO', `write EPROTO ${openssl}`)]) {
      const r = transportReason(e, url);
      expect(r.reason).toBe('pilots.example.org:8080 did not answer in TLS: it looks like a plain http:// server (or another service) on that port');
      expect(r.hint).toBe('use http://pilots.example.org:8080 if the server does not serve TLS, or check the port');
      expect(JSON.stringify(r)).not.toMatch(/ssl3|0A00010B/);
    }
  });
  it('names an untrusted certificate and how to trust its CA', () => {
    expect(transportReason(err('DEPTH_ZERO_SELF_SIGNED_CERT'), url)).toEqual({
      reason: 'the TLS certificate of pilots.example.org:8080 is not signed by a CA this program trusts (DEPTH_ZERO_SELF_SIGNED_CERT)',
      hint: 'give the CA that signed it: --ca-file CA.pem',
    });
  });
  it('hints at https:// when an http:// call finds the connection closed; keeps other messages', () => {
    expect(transportReason(err('UND_ERR_SOCKET', 'other side closed'), new URL('http://h:1')).hint).toBe('if the server serves TLS, use https://h:1');
    expect(transportReason(err('ECONNREFUSED'), url)).toEqual({ reason: 'connection refused' });
    expect(transportReason(new Error('something else'), url)).toEqual({ reason: 'something else' });
    // the code of a cause counts (undici wraps node's errors)
    expect(transportReason(Object.assign(new Error('fetch failed'), { cause: err('ENOTFOUND') }), url).reason).toBe('the host name pilots.example.org does not resolve');
  });
});
