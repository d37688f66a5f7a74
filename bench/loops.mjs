// The load generator of the heartbeat benchmarks (server-load, and the bare
// route beside it): a closed loop (so many requests in flight, each sent as
// the one before it is answered) and an open loop (requests sent at a fixed
// rate whatever the answers do, each one's latency counted from when it was
// due, so a server that falls behind cannot hide it).

/** Run `worker(i)` with `parallel` in flight until `until`; returns latencies (ms). */
export async function closedLoop(until, worker, parallel) {
  const latencies = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async (_, w) => {
      while (performance.now() < until) {
        const t0 = performance.now();
        await worker(next++, w);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return latencies;
}

/** Send `perSec` requests a second for `ms`, latency from when each was due. */
export async function openLoop(perSec, ms, worker) {
  const latencies = [];
  const start = performance.now();
  const total = Math.floor((perSec * ms) / 1000);
  const pending = [];
  let sent = 0;
  while (sent < total) {
    const due = start + (sent * 1000) / perSec;
    const now = performance.now();
    if (now < due) {
      await new Promise((r) => setTimeout(r, Math.max(0, due - now - 0.5)));
      continue;
    }
    const i = sent++;
    pending.push(worker(i).then(() => latencies.push(performance.now() - due)));
    if (pending.length > 20_000) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  const elapsed = (performance.now() - start) / 1000;
  return { latencies, achieved: total / elapsed };
}

