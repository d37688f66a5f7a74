/**
 * The HTTP paths of protocol version 1. Agent and server both build their
 * URLs and routes from these, so a path is spelled in one place only.
 */

export const PROTOCOL_VERSION = 1;
export const API_PREFIX = '/v1';

export const paths = {
  health: '/v1/health',
  register: '/v1/register',
  heartbeat: (pilotId: number | string) => `/v1/pilots/${pilotId}/heartbeat`,
  match: (pilotId: number | string) => `/v1/pilots/${pilotId}/match`,
  reports: (pilotId: number | string) => `/v1/pilots/${pilotId}/reports`,
  // admin
  payloads: '/v1/payloads',
  payload: (payloadId: number | string) => `/v1/payloads/${payloadId}`,
  pilots: '/v1/pilots',
  pilot: (pilotId: number | string) => `/v1/pilots/${pilotId}`,
  instructions: (pilotId: number | string) => `/v1/pilots/${pilotId}/instructions`,
  pilotHistory: (pilotId: number | string) => `/v1/pilots/${pilotId}/history`,
  pilotDetail: (pilotId: number | string) => `/v1/pilots/${pilotId}/detail`,
  overview: '/v1/overview',
  payloadsBatch: '/v1/payloads/batch',
  payloadKill: (payloadId: number | string) => `/v1/payloads/${payloadId}/kill`,
  payloadResubmit: (payloadId: number | string) => `/v1/payloads/${payloadId}/resubmit`,
  payloadHistory: (payloadId: number | string) => `/v1/payloads/${payloadId}/history`,
  accounting: '/v1/accounting',
  /** Instance-hours and their cost per group and endpoint (the director's instances). */
  accountingInstances: '/v1/accounting/instances',
  usage: '/v1/usage',
  // the director (docs/director.md)
  endpoints: '/v1/endpoints',
  endpointDisable: (name: string) => `/v1/endpoints/${encodeURIComponent(name)}/disable`,
  endpointEnable: (name: string) => `/v1/endpoints/${encodeURIComponent(name)}/enable`,
  instances: '/v1/instances',
  instance: (instanceId: number | string) => `/v1/instances/${instanceId}`,
  instancesStop: '/v1/instances/stop',
  director: '/v1/director',
  /** Start one instance of an endpoint end to end; NDJSON, a line per stage (admin). */
  endpointTest: (name: string) => `/v1/endpoints/${encodeURIComponent(name)}/test`,
  /** Prometheus text format, outside /v1: not part of the protocol's versioning. */
  metrics: '/metrics',
  // agent files (registration or admin token): agent-manifest.json, the files it lists, <file>.sha256
  agentFile: (name: string) => `/v1/agent/${name}`,
} as const;

/** Route patterns (fastify syntax) for the server. */
export const routes = {
  health: paths.health,
  register: paths.register,
  heartbeat: '/v1/pilots/:pilotId/heartbeat',
  match: '/v1/pilots/:pilotId/match',
  reports: '/v1/pilots/:pilotId/reports',
  payloads: paths.payloads,
  payload: '/v1/payloads/:payloadId',
  pilots: paths.pilots,
  pilot: '/v1/pilots/:pilotId',
  instructions: '/v1/pilots/:pilotId/instructions',
  pilotHistory: '/v1/pilots/:pilotId/history',
  pilotDetail: '/v1/pilots/:pilotId/detail',
  overview: paths.overview,
  payloadsBatch: '/v1/payloads/batch',
  payloadKill: '/v1/payloads/:payloadId/kill',
  payloadResubmit: '/v1/payloads/:payloadId/resubmit',
  payloadHistory: '/v1/payloads/:payloadId/history',
  accounting: '/v1/accounting',
  accountingInstances: paths.accountingInstances,
  usage: '/v1/usage',
  endpoints: paths.endpoints,
  endpointDisable: '/v1/endpoints/:name/disable',
  endpointEnable: '/v1/endpoints/:name/enable',
  instances: paths.instances,
  instance: '/v1/instances/:instanceId',
  instancesStop: paths.instancesStop,
  director: paths.director,
  endpointTest: '/v1/endpoints/:name/test',
  metrics: '/metrics',
} as const;

/**
 * The URL of `path` (one of `paths`) on the server at `base`, keeping the
 * base's own path: a server behind a proxy at `http://host/api` is called at
 * `http://host/api/v1/...`, not `http://host/v1/...`. Query and fragment of
 * the base are dropped.
 */
export function apiUrl(base: string | URL, path: string): URL {
  const u = new URL(base);
  const prefix = u.pathname.replace(/\/+$/, '');
  return new URL(`${u.protocol}//${u.host}${prefix}${path.startsWith('/') ? path : `/${path}`}`);
}
