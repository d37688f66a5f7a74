/**
 * A free TCP port on 127.0.0.1, closed again at once so that what the test
 * starts next (a server, PostgreSQL, HAProxy) binds it. Another process may
 * take it in between: callers that bind it through another program retry.
 */
import { createServer } from 'node:net';

/** A port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
