/**
 * The cloud's own words from an OpenStack error body. Each service wraps its
 * message differently: Compute `{"itemNotFound": {"code": 404, "message": …}}`
 * (the key names the fault: badRequest, forbidden, overLimit, …), Keystone
 * `{"error": {"code": 401, "title": …, "message": …}}`, Networking
 * `{"NeutronError": {"type": …, "message": …}}`. Pure.
 */

/** The message in an OpenStack error body, with the fault's name; the text itself (cut short) when it is not one. */
export function cloudMessage(text: string): string {
  try {
    const doc = JSON.parse(text) as unknown;
    if (doc && typeof doc === 'object' && !Array.isArray(doc)) {
      for (const [fault, v] of Object.entries(doc as Record<string, unknown>)) {
        if (v && typeof v === 'object' && typeof (v as { message?: unknown }).message === 'string') {
          const inner = v as { message: string; title?: unknown; type?: unknown };
          const name = typeof inner.type === 'string' ? inner.type : typeof inner.title === 'string' ? inner.title : fault;
          return `${name}: ${inner.message}`;
        }
      }
    }
  } catch {
    // not JSON: the text
  }
  const t = text.replace(/\s+/g, ' ').trim();
  return t === '' ? '(no message)' : t.length > 300 ? `${t.slice(0, 300)}…` : t;
}
