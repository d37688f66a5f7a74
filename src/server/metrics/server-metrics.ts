/**
 * The server's metrics: requests by route and status, heartbeat and match
 * latency, stall sweeps, whether this server is the replicas' leader, and
 * at scrape time pilots by state, payloads by state, queue depth by group and core-seconds by how attempts ended (read from the
 * store). Served at GET /metrics with the admin token (Prometheus:
 * `authorization: { credentials: <admin token> }`).
 */
import type { PayloadState, PilotState } from '../../protocol/index.js';
import type { StoreCounts } from '../store/store.js';
import { Counter, Histogram, renderMetrics, type GaugeSamples } from './registry.js';

const PILOT_STATES: PilotState[] = ['submitted', 'booting', 'running', 'draining', 'halting', 'halted', 'stalled', 'error'];
// the states a payload rests in (lost, kept for existing dashboards, and evicted are steps of its history: always 0 here)
const PAYLOAD_STATES: PayloadState[] = ['queued', 'assigned', 'running', 'done', 'failed', 'cancelled', 'lost'];
const OUTCOMES = ['done', 'failed', 'cancelled', 'evicted'] as const;

/** The metrics one server process keeps. */
export class ServerMetrics {
  readonly requests = new Counter('vmpilot_http_requests_total', 'HTTP requests by route pattern, method and status code.');
  readonly heartbeat = new Histogram('vmpilot_heartbeat_duration_seconds', 'Time to handle a pilot heartbeat.');
  readonly match = new Histogram(
    'vmpilot_match_duration_seconds',
    'Time to answer a match request, including the long-poll wait; outcome payload, instructions or none.',
  );
  readonly stalled = new Counter('vmpilot_pilots_stalled_total', 'Pilots marked stalled by the sweep.');
  readonly requeued = new Counter('vmpilot_payloads_requeued_total', 'Payloads put back in the queue after their attempt was lost.');
  readonly sweeps = new Counter('vmpilot_stall_sweeps_total', "Stall sweeps this server ran (only the leader's sweeper runs).");
  /** Whether this server is the leader of the replicas on its database (leader.ts); always true on SQLite once started. */
  leader = false;

  /** The exposition text, with the store's counts and the open long polls as gauges. */
  render(counts: StoreCounts, longPolls = 0): string {
    const gauges: GaugeSamples[] = [
      { name: 'vmpilot_match_requests_open', help: 'Match requests (long polls) held open now.', samples: [{ labels: {}, value: longPolls }] },
      {
        name: 'vmpilot_leader',
        help: '1 while this server is the leader of the replicas on its database (it runs the stall sweeper and the director), else 0.',
        samples: [{ labels: {}, value: this.leader ? 1 : 0 }],
      },
      {
        name: 'vmpilot_pilots',
        help: 'Pilots by state.',
        samples: PILOT_STATES.map((state) => ({ labels: { state }, value: counts.pilotsByState[state] ?? 0 })),
      },
      {
        name: 'vmpilot_payloads',
        help: 'Payloads by state.',
        samples: PAYLOAD_STATES.map((state) => ({ labels: { state }, value: counts.payloadsByState[state] ?? 0 })),
      },
      {
        name: 'vmpilot_queue_depth',
        help: 'Queued payloads by group.',
        samples: Object.entries(counts.queuedByGroup).map(([group, value]) => ({ labels: { group }, value })),
      },
      {
        name: 'vmpilot_payload_core_seconds_total',
        help: 'Core-seconds payload attempts used, by how they ended: done, failed (their own doing), cancelled (killed), evicted (stopped by the infrastructure or lost with their pilot).',
        type: 'counter',
        samples: OUTCOMES.map((outcome) => ({ labels: { outcome }, value: counts.coreSecByOutcome[outcome] ?? 0 })),
      },
    ];
    return renderMetrics(gauges, [this.requests, this.heartbeat, this.match, this.stalled, this.requeued, this.sweeps]);
  }
}
