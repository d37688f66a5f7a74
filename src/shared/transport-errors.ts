/**
 * Why a connection failed, in words a user can act on. Node and OpenSSL
 * report a TLS handshake with a plain HTTP server as
 * `ERR_SSL_WRONG_VERSION_NUMBER` with a line of OpenSSL internals
 * (`…:ssl3_get_record:wrong version number:…/ssl3_record.c:350:`); an
 * untrusted certificate as `DEPTH_ZERO_SELF_SIGNED_CERT` and the like. These
 * turn the code into a sentence and a hint (what to change). Pure.
 */

/** The reason for a failed connection to `url`, and what to do about it when there is something to do. */
export interface TransportReason {
  reason: string;
  hint?: string;
}

/** TLS handshakes that met something other than TLS: a plain HTTP server, most often. */
const NOT_TLS = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_HTTP_REQUEST']);

/** Certificates signed by a CA this process does not trust. */
const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
]);

/** node's error code of `err` or of its cause ('' when there is none). */
export function errorCode(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  const code = e?.code ?? e?.cause?.code;
  return typeof code === 'string' ? code : '';
}

/**
 * The reason a call to `url` got no HTTP answer. `caHint` names how to give
 * a CA (e.g. "--ca-file CA.pem"). Unknown errors, and every error of a
 * mailbox (a file: URL), keep their own message.
 */
export function transportReason(err: unknown, url: URL, caHint = '--ca-file CA.pem'): TransportReason {
  const code = errorCode(err);
  const host = url.host;
  const message = err instanceof Error ? err.message : String(err);
  // a mailbox (file:, docs/hpc.md) has no connection or TLS: its transport words its own failures ("no relay took the request ...")
  if (url.protocol === 'file:') return { reason: message };
  if (code === 'ECONNREFUSED') return { reason: 'connection refused' };
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return { reason: `the host name ${url.hostname} does not resolve` };
  // node:https says EPROTO with OpenSSL's text; undici gives the OpenSSL reason as the code
  if (NOT_TLS.has(code) || (code === 'EPROTO' && /wrong version number|packet length too long|http request/i.test(message))) {
    return {
      reason: `${host} did not answer in TLS: it looks like a plain http:// server (or another service) on that port`,
      hint: `use http://${host}${url.pathname === '/' ? '' : url.pathname} if the server does not serve TLS, or check the port`,
    };
  }
  if (UNTRUSTED.has(code)) {
    return { reason: `the TLS certificate of ${host} is not signed by a CA this program trusts (${code})`, hint: `give the CA that signed it: ${caHint}` };
  }
  if (code === 'CERT_HAS_EXPIRED') return { reason: `the TLS certificate of ${host} has expired` };
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return { reason: `the TLS certificate of ${host} is not for ${url.hostname}`, hint: 'use the host name the certificate names' };
  // an http:// call to a TLS server: it closes the connection without an answer
  if (url.protocol === 'http:' && (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET')) {
    return { reason: `${host} closed the connection without an answer`, hint: `if the server serves TLS, use https://${host}` };
  }
  return { reason: message };
}
