/**
 * The pure parts of `endpoint test NAME` (endpoint-test.ts runs it): the
 * stages in order, how long each may take for an endpoint, the probe's group
 * and command, and what to check when a stage fails, per stage and driver
 * kind. No I/O here.
 */
import type { EndpointTestStageName } from '../../protocol/index.js';
import type { DriverKind } from './driver-settings.js';
import type { EndpointConfig } from './endpoint-config.js';

/** The stages, in the order they run. */
export const STAGES: readonly EndpointTestStageName[] = ['config', 'credentials', 'create', 'booting', 'registered', 'probe', 'halted', 'deleted'];

/** What each stage proves, for people (docs/director.md "Testing an endpoint" has the same). */
export const STAGE_MEANING: Readonly<Record<EndpointTestStageName, string>> = {
  config: 'the endpoint and the shape exist and are enabled',
  credentials: 'the driver answers: listing its resources succeeds',
  create: 'the driver accepted the create (the instance has its id)',
  booting: 'the driver says the machine runs',
  registered: "the machine's pilot registered with the instance's credential",
  probe: 'a probe payload ran on that pilot: done, exit 0, its output holds the marker',
  halted: 'the pilot, drained, halted',
  deleted: 'the director removed the instance at its driver',
};

/** The groups made for endpoint tests start with this: a pilot of such a group takes no real work. */
export const PROBE_GROUP_PREFIX = 'vmpilot-probe-';

/** The probe's group from a random hex string (fits the payload group pattern). */
export function probeGroup(randomHex: string): string {
  return `${PROBE_GROUP_PREFIX}${randomHex}`;
}

/** The marker the probe prints, and the command that prints it. */
export function probeCommand(group: string): { marker: string; command: string[] } {
  const marker = `vmpilot endpoint test ${group} ok`;
  return { marker, command: ['/bin/sh', '-c', `echo '${marker}'`] };
}

/** How long a listing may take (the driver answers or not). */
export const CREDENTIALS_SEC = 60;
/** How long the probe payload may take from its submit to its end. */
export const PROBE_SEC = 120;
/** How long a delete at the driver may take once the instance ended (a process driver waits up to 45 s for SIGTERM). */
export const DELETE_SEC = 120;

/** The longest each waiting stage may take on `ep`, in seconds, for a director cycling every `everyMs`. */
export function stageBounds(ep: EndpointConfig, everyMs: number): Readonly<Record<EndpointTestStageName, number>> {
  // the director's own timeouts act first (its reason says more than ours): ours come a few cycles later
  const slack = Math.ceil((3 * everyMs) / 1000) + 10;
  return {
    config: 0,
    credentials: CREDENTIALS_SEC,
    create: ep.timeouts.bootSec + slack,
    booting: ep.timeouts.bootSec + slack,
    registered: ep.timeouts.registrationSec + slack,
    probe: PROBE_SEC + slack,
    halted: ep.timeouts.payloadGraceSec + 60 + slack,
    deleted: DELETE_SEC + slack,
  };
}

const BATCH_LIST: Readonly<Record<string, string>> = { slurm: 'squeue', pbs: 'qstat', sge: 'qstat' };
const BATCH_SUBMIT: Readonly<Record<string, string>> = { slurm: 'sbatch', pbs: 'qsub', sge: 'qsub' };

/**
 * What to check when `stage` failed on `ep` (its driver kind and settings),
 * most likely first. `key` is the instance's idempotency key when it has one
 * (the name of its resource at the driver).
 */
export function hintsFor(stage: EndpointTestStageName, ep: EndpointConfig, key: string | null = null): string[] {
  const d = ep.driver;
  const kind: DriverKind = d.kind;
  const name = key ?? 'the instance key';
  const batch = kind === 'slurm' || kind === 'pbs' || kind === 'sge';
  const via = batch && d.kind !== 'process' && 'ssh' in d && d.ssh ? ` on ${d.ssh.user ? `${d.ssh.user}@` : ''}${d.ssh.host}` : '';
  switch (stage) {
    case 'config':
      return [
        `the endpoint and its shapes in the endpoints: section of serve --config (vmpilot-server endpoints lists them)`,
        `a disabled endpoint: vmpilot-server endpoint enable ${ep.name}`,
      ];
    case 'credentials':
      switch (d.kind) {
        case 'process':
          return [`the workDir ${d.workDir} exists and the server's user may read and write it`];
        case 'qemu':
          return [`the workDir ${d.workDir} exists and the server's user may read and write it`];
        case 'ec2':
          return [
            'the AWS credentials the server sees: its profile' + (d.profile ? ` "${d.profile}"` : '') + ', AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or the instance role',
            `the region${d.region ? ` ${d.region}` : ''}${d.endpoint ? ` and the endpoint URL ${d.endpoint}` : ''}`,
            'the IAM policy allows ec2:DescribeInstances',
          ];
        case 'openstack':
          return [
            `the auth URL ${d.authUrl} is reachable from the server (and its CA: caFile)`,
            'the password or application credential file (its path, its permissions, its content), the user, project and domain',
            `the region${d.region ? ` ${d.region}` : ''} and the interface ${d.interface} of the service catalogue`,
          ];
        case 'opennebula':
          return [`the XML-RPC endpoint ${d.endpoint} is reachable from the server (and its CA: caFile)`, `the user ${d.user} and its password file`];
        default:
          return [
            `${BATCH_LIST[kind]} works as the server's user${via}${via ? ': ssh there by hand with the same key and options, and check known_hosts' : ''}`,
            ...(via ? ['the ssh key file (its path and permissions) and the login node\'s host and port'] : []),
          ];
      }
    case 'create':
      switch (d.kind) {
        case 'process':
          return [`the agent bundle ${d.agent ?? 'dist/vmpilot.cjs beside the server'} exists`, `the node binary ${d.node ?? "(the server's own)"}`, `the workDir ${d.workDir} is writable`];
        case 'qemu':
          return [`the base image ${d.image} and the QEMU binary ${d.binary}`, `the workDir ${d.workDir} is writable and has space for the overlay`];
        case 'ec2':
          return ['the image id, the instance types of the shape in that region or zone, the subnets and security groups', 'the account\'s instance limits (InstanceLimitExceeded) and capacity (InsufficientInstanceCapacity)', 'a spot max price below the market (SpotMaxPriceTooLow)', 'the user-data fits in 16 KB'];
        case 'openstack':
          return ['the flavour, image and network names of the shape exist in the project', 'the project\'s quota (instances, cores, RAM; floating IPs with publicIp)'];
        case 'opennebula':
          return ['the template id of the shape exists and the user may instantiate it', 'the user\'s quota'];
        default:
          return [`${BATCH_SUBMIT[kind]}${via} accepts the script: the ${kind === 'slurm' ? 'partition' : 'queue'}, the account, the submitArgs`, `the batch workDir and the output directory are writable${via}`];
      }
    case 'booting':
      switch (d.kind) {
        case 'process':
          return [`the agent's log ${d.workDir}/${name}/agent.log (removed with the instance: start the agent by hand, ${d.node ?? 'node'} ${d.agent ?? 'dist/vmpilot.cjs'} --version, to see it fail)`, `timeouts.bootSec (${ep.timeouts.bootSec} s)`];
        case 'qemu':
          return [`the VM's files under ${d.workDir}/${name}/`, `KVM (accel ${d.accel}): under TCG a VM boots much slower; timeouts.bootSec (${ep.timeouts.bootSec} s)`];
        case 'ec2':
        case 'openstack':
        case 'opennebula':
          return ["the instance's state and console log at the cloud (its name is the instance key)", `capacity in the zone or region; timeouts.bootSec (${ep.timeouts.bootSec} s)`];
        default:
          return [
            `why the job waits: ${kind === 'slurm' ? `squeue --name ${name} -o '%i %T %r'` : `qstat -f (job name ${name})`}${via}`,
            `the ${kind === 'slurm' ? 'partition' : 'queue'} and its limits, the account; a busy queue needs a longer timeouts.bootSec (${ep.timeouts.bootSec} s)`,
          ];
      }
    case 'registered':
      return [
        `the server URL as the machine reaches it (${ep.serverUrl ?? "the server's own URL: set serverUrl on the endpoint when machines reach it by another name"})`,
        'a firewall or security group between the machine and the server\'s port; the server\'s TLS certificate and the CA the machine trusts',
        "the agent download (GET /v1/agent/...) from the machine",
        d.kind === 'process'
          ? `the agent's log ${d.workDir}/${name}/agent.log (removed with the instance: start the agent by hand, ${d.node ?? 'node'} ${d.agent ?? 'dist/vmpilot.cjs'} --version, to see it fail)`
          : d.kind === 'qemu'
            ? `the VM's console log under ${d.workDir}/${name}/`
            : batch
              ? `the job's output file${via}`
              : "the instance's console log at the cloud",
        `timeouts.registrationSec (${ep.timeouts.registrationSec} s)`,
      ];
    case 'probe':
      return ['the probe payload: vmpilot-server jobs --group <the probe group> and job ID', "the pilot's log on the machine (/bin/sh must exist there)", 'a pilot that serves every group (shared registration token) may have taken the probe first'];
    case 'halted':
      return ['the pilot received the drain: vmpilot-server pilot ID (its instructions)', `timeouts.payloadGraceSec (${ep.timeouts.payloadGraceSec} s)`];
    case 'deleted':
      return [
        'the director\'s last cycle: vmpilot-server director status (a delete that failed says why)',
        `the resource at the driver, named ${name}: remove it by hand if it stays`,
      ];
  }
}
