// Simulated pilots for bench/server-load.mjs: honest protocol clients, many
// in one process, over one undici pool. Each pilot reports only payloads the
// server handed it, starts and ends what it claims, acknowledges every
// instruction it is given (a kill-payload ends the payload it names), keeps
// a renewed credential, and numbers its reports from the server's last
// applied seq with no gap. Anything a protocol client must not see — a reply
// without the payload it should carry, a payload handed out twice, a report
// refused, a kill for a payload it does not hold — throws, so a benchmark
// that measures the wrong path stops with an error instead of a figure.
import { Pool } from 'undici';

/** A pool of keep-alive connections to `url`; `post` and `get` throw on any status ≥ 300. */
export function connect(url, connections) {
  const pool = new Pool(url, { connections, pipelining: 1 });
  const call = async (method, route, token, body) => {
    const res = await pool.request({
      method,
      path: route,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.body.text();
    if (res.statusCode >= 300) throw new Error(`${method} ${route}: ${res.statusCode} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  return {
    post: (route, token, body) => call('POST', route, token, body),
    get: (route, token) => call('GET', route, token),
    close: () => pool.close(),
  };
}

/** One simulated pilot: what it was given, and its report sequence. */
export class SimPilot {
  constructor(net, id, credential, cores) {
    this.net = net;
    this.id = id;
    this.credential = credential;
    this.cores = cores;
    /** The last seq the server applied for this pilot. */
    this.seq = 0;
    /** Payloads the server handed this pilot and it has not ended: id → cores. */
    this.held = new Map();
    /** Instructions acknowledged (ids). */
    this.acked = new Set();
    this.instructions = 0;
  }

  /** Register a new pilot with `cores` cores. */
  static async register(net, token, hostname, cores = 8) {
    const reply = await net.post('/v1/register', token, { hostname, version: '0.1.0', cores, memoryMb: 16000 });
    return new SimPilot(net, reply.pilotId, reply.credential, cores);
  }

  get usedCores() {
    let n = 0;
    for (const c of this.held.values()) n += c;
    return n;
  }

  /** A heartbeat saying what it runs: exactly the payloads it holds. */
  heartbeatBody() {
    const used = this.usedCores;
    return {
      at: Date.now(),
      state: 'serving',
      version: '0.1.0',
      uptimeSec: 3600,
      cores: { total: this.cores, used, free: this.cores - used },
      memoryMb: { total: 16000, used: 1000 + 900 * this.held.size },
      load: [used, used, used],
      diskFreeMb: 30000,
      payloads: [...this.held].map(([id, cores]) => ({ id, state: 'running', cores, cpuSec: 100, rssMb: 900 })),
      deadline: null,
    };
  }

  /** Send a heartbeat; carry out what its reply says. */
  async beat() {
    const reply = await this.net.post(`/v1/pilots/${this.id}/heartbeat`, this.credential, this.heartbeatBody());
    if (reply.credential) this.credential = reply.credential;
    await this.obey(reply.instructions);
    return reply;
  }

  /** The match request for what is free now. */
  matchBody() {
    return { freeCores: this.cores - this.usedCores, totalCores: this.cores, freeMemoryMb: 16000, remainingSec: null, holding: [...this.held.keys()], waitSec: 0 };
  }

  /** Ask for work; returns the reply after carrying out its instructions. */
  async match() {
    const reply = await this.net.post(`/v1/pilots/${this.id}/match`, this.credential, this.matchBody());
    await this.obey(reply.instructions);
    return reply;
  }

  /** Report `drafts` (numbered here, from the last applied seq on); the server must apply every one. */
  async report(...drafts) {
    const reports = drafts.map((d, i) => ({ seq: this.seq + 1 + i, at: Date.now(), ...d }));
    const reply = await this.net.post(`/v1/pilots/${this.id}/reports`, this.credential, { reports });
    const last = reports[reports.length - 1].seq;
    if (reply.refused.length > 0 || reply.appliedSeq !== last) {
      throw new Error(`pilot ${this.id}: reports ${reports[0].seq}..${last} not all applied (appliedSeq ${reply.appliedSeq}, refused ${JSON.stringify(reply.refused)})`);
    }
    this.seq = last;
    await this.obey(reply.instructions);
    return reply;
  }

  /** Take a payload the server handed out: it runs from now. */
  async start(payload) {
    if (this.held.has(payload.id)) throw new Error(`pilot ${this.id}: payload ${payload.id} handed out again`);
    if (payload.cores > this.cores - this.usedCores) throw new Error(`pilot ${this.id}: payload ${payload.id} needs ${payload.cores} cores, ${this.cores - this.usedCores} free`);
    this.held.set(payload.id, payload.cores);
    await this.report({ type: 'payload-started', payloadId: payload.id, pid: 1000 + (payload.id % 30000) });
  }

  /** A payload it holds ended with `exitCode` (or `signal`). */
  async end(payloadId, exitCode = 0, signal = null) {
    if (!this.held.delete(payloadId)) throw new Error(`pilot ${this.id}: ends payload ${payloadId}, which it does not hold`);
    await this.report({ type: 'payload-ended', payloadId, exitCode, signal, cpuSec: 1, peakRssMb: 100 });
  }

  /** Carry out and acknowledge each instruction once: a kill ends the payload; anything else is only acknowledged. */
  async obey(instructions = []) {
    for (const i of instructions) {
      if (this.acked.has(i.id)) continue;
      this.acked.add(i.id);
      this.instructions++;
      if (i.type === 'kill-payload') {
        if (!this.held.has(i.payloadId)) throw new Error(`pilot ${this.id}: told to kill payload ${i.payloadId}, which it never reported running: ${i.reason ?? ''}`);
        await this.end(i.payloadId, null, 'SIGTERM');
      }
      await this.report({ type: 'instruction-done', instructionId: i.id, ok: true });
    }
  }
}

/** Run `fn(i)` for i in [0, count) with `inFlight` at a time. */
export async function each(count, inFlight, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(inFlight, count) }, async () => {
      for (let i = next++; i < count; i = next++) await fn(i);
    }),
  );
}
