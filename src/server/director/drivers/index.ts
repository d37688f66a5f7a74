/**
 * The driver of each configured endpoint, from its settings: what the
 * server's wiring calls once at start (phase B), so that `serve` needs to
 * know no driver by name.
 */
import path from 'node:path';
import type { Clock } from '../../../shared/clock.js';
import type { Logger } from '../../../shared/log.js';
import { VmpilotError } from '../../../shared/errors.js';
import type { AgentRef } from '../../delivery/shell.js';
import { resourcePrefix } from '../credential.js';
import type { EndpointConfig } from '../endpoint-config.js';
import type { Driver } from '../ports.js';
import { BatchDriver } from './batch.js';
import { commandRunner } from './commands.js';
import { Ec2Driver } from './ec2/driver.js';
import { OpenNebulaDriver } from './opennebula/driver.js';
import { OpenStackDriver } from './openstack/driver.js';
import { ProcessDriver } from './process.js';
import { QemuDriver } from './qemu.js';

/** What every driver may need from the server. */
export interface DriverDeps {
  clock: Clock;
  directorId: string;
  /** The directory of the built agent files (dist/: vmpilot.cjs, the manifest). */
  agentDir: string;
  /** The agent file batch jobs and VMs fetch, by flavour (from the manifest). */
  agentFile: (flavour: 'executable' | 'bundle') => AgentRef;
  /** The node binary that runs local agents and forwarders (the server's own). */
  node: string;
  /** The environment local agents start with (no secrets of the server). */
  baseEnv: Readonly<Record<string, string>>;
  /** Where drivers log what they keep running (a reverse tunnel). */
  log?: Logger;
}

/** The driver of `endpoint`. */
export function driverFor(endpoint: EndpointConfig, deps: DriverDeps): Driver {
  const prefix = resourcePrefix(deps.directorId, endpoint.name);
  const s = endpoint.driver;
  switch (s.kind) {
    case 'process':
      return new ProcessDriver({ settings: s, prefix, agent: s.agent ?? path.join(deps.agentDir, 'vmpilot.cjs'), node: s.node ?? deps.node, baseEnv: deps.baseEnv, clock: deps.clock });
    case 'qemu':
      return new QemuDriver({ settings: s, prefix, agent: deps.agentFile('executable'), node: deps.node, clock: deps.clock });
    case 'slurm':
    case 'pbs':
    case 'sge':
      return new BatchDriver({ settings: s, prefix, agent: deps.agentFile(s.agent), commands: commandRunner(s.ssh, s.env, { clock: deps.clock, log: deps.log?.child({ endpoint: endpoint.name }) ?? null }), clock: deps.clock });
    case 'ec2':
      return new Ec2Driver({ settings: s, prefix, directorId: deps.directorId, endpoint: endpoint.name, shapes: endpoint.shapes, agent: deps.agentFile('executable'), clock: deps.clock });
    case 'openstack':
      return new OpenStackDriver({ settings: s, prefix, shapes: endpoint.shapes, agent: deps.agentFile('executable'), clock: deps.clock });
    case 'opennebula':
      return new OpenNebulaDriver({ settings: s, prefix, shapes: endpoint.shapes, agent: deps.agentFile('executable'), clock: deps.clock });
    default:
      throw new VmpilotError('VMP_CONFIG', `endpoint ${endpoint.name}: no driver ${(s as { kind: string }).kind}`);
  }
}
