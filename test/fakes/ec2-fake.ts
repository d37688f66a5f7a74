/**
 * A FAKE EC2 for the ec2 driver's tests: an EC2Client whose calls are
 * answered by aws-sdk-client-mock from a small in-memory EC2, with the
 * answers and errors shaped as the EC2 API reference documents them
 * (DescribeInstances' Reservations/Instances with State {Code, Name},
 * Tags, Placement, InstanceLifecycle; DescribeSpotPriceHistory's
 * SpotPriceHistory with string prices; error codes such as
 * InsufficientInstanceCapacity, SpotMaxPriceTooLow, InstanceLimitExceeded,
 * IdempotentParameterMismatch, InvalidInstanceID.NotFound). No socket: the
 * SDK's transport is replaced, everything above it (command
 * serialisation aside) is the real SDK.
 *
 * A client token made once returns the same instance when repeated with
 * the same parameters and IdempotentParameterMismatch with others, as EC2
 * does. A test may script errors per (type, zone) and spot prices. With
 * `runAgents`, an instance's user-data is booted as a FakeMachine (a real
 * agent process) once it runs; the agent exiting is the machine powering
 * off, which terminates it (InstanceInitiatedShutdownBehavior terminate).
 */
import path from 'node:path';
import {
  DescribeInstancesCommand,
  DescribeSpotPriceHistoryCommand,
  EC2Client,
  EC2ServiceException,
  type Filter,
  type Instance,
  RunInstancesCommand,
  type RunInstancesCommandInput,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { FakeMachine } from './cloud-vm.js';

/** The fake account's subnets and their zones. */
export const FAKE_SUBNETS: Readonly<Record<string, string>> = { 'subnet-0a1a1a1a': 'eu-west-1a', 'subnet-0b2b2b2b': 'eu-west-1b' };

const STATE_CODES: Record<string, number> = { pending: 0, running: 16, 'shutting-down': 32, terminated: 48, stopping: 64, stopped: 80 };

interface FakeInstance {
  instance: Instance;
  input: RunInstancesCommandInput;
  userData: string;
  machine: FakeMachine | null;
}

export interface Ec2FakeOptions {
  bootMs?: number;
  /** `extraArgs`: more agent flags for one instance (e.g. --metadata-url of its own fake IMDS). */
  runAgents?: { machineDir: string; extraArgs?: (i: Instance) => Promise<string[]> } | null;
}

/** An EC2 error as the SDK raises it. */
export function ec2Error(code: string, message: string): EC2ServiceException {
  return new EC2ServiceException({ name: code, $fault: 'client', $metadata: { httpStatusCode: 400, requestId: 'fake-request' }, message });
}

/** The fake EC2 and its mocked client. */
export class Ec2Fake {
  readonly client = new EC2Client({ region: 'eu-west-1', credentials: { accessKeyId: 'AKIAFAKE', secretAccessKey: 'fake' } });
  readonly mock = mockClient(this.client);
  readonly instances = new Map<string, FakeInstance>();
  /** Every RunInstances input, repeats included. */
  readonly runCalls: RunInstancesCommandInput[] = [];
  /** `type zone` → spot price per hour (strings as EC2 answers them). */
  spotPrices = new Map<string, string>();
  spotPriceCalls = 0;
  /** Errors RunInstances raises for an offer: `market type zone` → [code, message]; `*` in place of a zone: any zone. */
  failures = new Map<string, [string, string]>();
  /** Client tokens EC2 remembers, with what they made (or null: spent by a failed request). */
  readonly tokens = new Map<string, { params: string; instanceId: string | null }>();
  /** Instance id → how many more DescribeInstances calls do not show it yet (EC2's listing lags behind its creates). */
  readonly lag = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private next = 0x1000;

  constructor(readonly o: Ec2FakeOptions = {}) {
    const m = this.mock;
    m.on(RunInstancesCommand).callsFake(async (input: RunInstancesCommandInput) => this.run(input));
    m.on(DescribeInstancesCommand).callsFake(async (input: { InstanceIds?: string[]; Filters?: Filter[]; NextToken?: string }) => this.describe(input));
    m.on(TerminateInstancesCommand).callsFake(async (input: { InstanceIds?: string[] }) => this.terminate(input.InstanceIds ?? []));
    m.on(DescribeSpotPriceHistoryCommand).callsFake(async (input: { InstanceTypes?: string[]; Filters?: Filter[]; NextToken?: string }) => this.spotPriceHistory(input));
  }

  /** Stop every fake machine and timer; restore the client. */
  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    await Promise.all([...this.instances.values()].map((i) => i.machine?.stop(2000)));
    this.mock.restore();
  }

  /** DescribeSpotPriceHistory: the scripted prices (and an older entry of each), in two pages. */
  spotPriceHistory(input: { InstanceTypes?: string[]; Filters?: Filter[]; NextToken?: string }) {
    this.spotPriceCalls++;
    const zones = input.Filters?.find((f) => f.Name === 'availability-zone')?.Values;
    const now = new Date();
    const history = [...this.spotPrices]
      .map(([k, price]) => ({ type: k.split(' ')[0]!, zone: k.split(' ')[1]!, price }))
      .filter((p) => (input.InstanceTypes ?? []).includes(p.type) && (!zones || zones.includes(p.zone)))
      // an older entry too, as the history has: the driver keeps the latest
      .flatMap((p) => [
        { AvailabilityZone: p.zone, InstanceType: p.type, ProductDescription: 'Linux/UNIX', SpotPrice: (Number(p.price) * 3).toFixed(6), Timestamp: new Date(now.getTime() - 3600_000) },
        { AvailabilityZone: p.zone, InstanceType: p.type, ProductDescription: 'Linux/UNIX', SpotPrice: p.price, Timestamp: now },
      ]);
    // two pages, to be read whole
    const half = Math.ceil(history.length / 2);
    return input.NextToken === 'page2' ? { SpotPriceHistory: history.slice(half), NextToken: '' } : { SpotPriceHistory: history.slice(0, half), NextToken: history.length > half ? 'page2' : '' };
  }

  machineOf(key: string): FakeMachine | null {
    return [...this.instances.values()].find((i) => tag(i.instance, 'vmpilot:key') === key)?.machine ?? null;
  }

  private later(ms: number, f: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      f();
    }, ms);
    this.timers.add(t);
  }

  private setState(f: FakeInstance, name: string): void {
    f.instance.State = { Name: name as 'running', Code: STATE_CODES[name] };
  }

  /** RunInstances (the mocked client and the Query-API fake answer from here). */
  run(input: RunInstancesCommandInput): { Instances: Instance[]; ReservationId: string; OwnerId: string } {
    this.runCalls.push(input);
    const params = JSON.stringify({ ...input, ClientToken: undefined });
    const token = input.ClientToken;
    if (token !== undefined) {
      const known = this.tokens.get(token);
      if (known && known.params !== params) throw ec2Error('IdempotentParameterMismatch', `The client token you have provided is associated with a resource that is already deleted or has different parameters. Please use a different client token.`);
      if (known?.instanceId) return { Instances: [this.instances.get(known.instanceId)!.instance], ReservationId: 'r-fake', OwnerId: '123456789012' };
    }
    const market = input.InstanceMarketOptions?.MarketType === 'spot' ? 'spot' : 'on-demand';
    if (input.SubnetId && !FAKE_SUBNETS[input.SubnetId]) throw ec2Error('InvalidSubnetID.NotFound', `The subnet ID '${input.SubnetId}' does not exist`);
    const zone = input.Placement?.AvailabilityZone ?? (input.SubnetId ? FAKE_SUBNETS[input.SubnetId]! : 'eu-west-1a');
    const scripted = this.failures.get(`${market} ${input.InstanceType} ${zone}`) ?? this.failures.get(`${market} ${input.InstanceType} *`);
    if (scripted) {
      // a failed request spends its token here: the next one with other parameters is a mismatch
      if (token !== undefined) this.tokens.set(token, { params, instanceId: null });
      throw ec2Error(scripted[0], scripted[1]);
    }
    if (market === 'spot') {
      const price = this.spotPrices.get(`${input.InstanceType} ${zone}`);
      const max = input.InstanceMarketOptions?.SpotOptions?.MaxPrice;
      if (price !== undefined && max !== undefined && Number(max) < Number(price)) {
        if (token !== undefined) this.tokens.set(token, { params, instanceId: null });
        throw ec2Error('SpotMaxPriceTooLow', `Your Spot request price of ${max} is lower than the minimum required Spot request fulfillment price of ${price}.`);
      }
    }
    const id = `i-0fa${(this.next++).toString(16).padStart(14, '0')}`;
    const tags = input.TagSpecifications?.find((t) => t.ResourceType === 'instance')?.Tags ?? [];
    const instance: Instance = {
      InstanceId: id,
      ImageId: input.ImageId,
      InstanceType: input.InstanceType,
      LaunchTime: new Date(),
      Placement: { AvailabilityZone: zone, Tenancy: 'default' },
      State: { Code: 0, Name: 'pending' },
      Tags: tags.map((t) => ({ ...t })),
      ClientToken: token,
      SubnetId: input.SubnetId,
      ...(market === 'spot' ? { InstanceLifecycle: 'spot', SpotInstanceRequestId: `sir-${id.slice(2, 10)}` } : {}),
    };
    const f: FakeInstance = { instance, input, userData: Buffer.from(input.UserData ?? '', 'base64').toString('utf8'), machine: null };
    this.instances.set(id, f);
    if (token !== undefined) this.tokens.set(token, { params, instanceId: id });
    this.later(this.o.bootMs ?? 200, () => void this.boot(f));
    return { Instances: [structuredClone(instance)], ReservationId: `r-${id.slice(2)}`, OwnerId: '123456789012' };
  }

  private async boot(f: FakeInstance): Promise<void> {
    if (f.instance.State?.Name !== 'pending') return;
    const extra = (await this.o.runAgents?.extraArgs?.(f.instance)) ?? [];
    this.setState(f, 'running');
    if (!this.o.runAgents) return;
    f.machine = new FakeMachine(f.userData, path.join(this.o.runAgents.machineDir, tag(f.instance, 'vmpilot:key') ?? f.instance.InstanceId!), extra);
    void f.machine.exited.then(() => {
      // the agent powered the machine off: InstanceInitiatedShutdownBehavior terminate
      if (f.instance.State?.Name === 'running' && f.input.InstanceInitiatedShutdownBehavior === 'terminate') this.shutDown(f, 'Client.InstanceInitiatedShutdown: Instance initiated shutdown');
    });
  }

  /** shutting-down until the OS is down (`down`), then terminated a moment later. */
  private shutDown(f: FakeInstance, reason: string, down: Promise<unknown> = Promise.resolve()): void {
    this.setState(f, 'shutting-down');
    f.instance.StateReason = { Code: reason.split(':')[0], Message: reason };
    void down.then(() => this.later(300, () => this.setState(f, 'terminated')));
  }

  /** DescribeInstances. */
  describe(input: { InstanceIds?: string[]; Filters?: Filter[] }): { Reservations: { ReservationId: string; Instances: Instance[] }[] } {
    let list = [...this.instances.values()].map((f) => f.instance).filter((i) => {
      const n = this.lag.get(i.InstanceId!) ?? 0;
      if (n > 0) this.lag.set(i.InstanceId!, n - 1);
      return n === 0;
    });
    if (input.InstanceIds) {
      const missing = input.InstanceIds.find((id) => !this.instances.has(id));
      if (missing) throw ec2Error('InvalidInstanceID.NotFound', `The instance ID '${missing}' does not exist`);
      list = list.filter((i) => input.InstanceIds!.includes(i.InstanceId!));
    }
    for (const f of input.Filters ?? []) {
      const values = f.Values ?? [];
      list = list.filter((i) => {
        if (f.Name === 'instance-state-name') return values.includes(i.State?.Name ?? '');
        if (f.Name === 'client-token') return values.includes(i.ClientToken ?? '');
        if (f.Name?.startsWith('tag:')) return values.includes(tag(i, f.Name.slice(4)) ?? '\0');
        throw ec2Error('InvalidParameterValue', `The filter '${f.Name}' is invalid`);
      });
    }
    return { Reservations: list.map((i) => ({ ReservationId: `r-${i.InstanceId!.slice(2)}`, Instances: [structuredClone(i)] })) };
  }

  /** TerminateInstances. */
  async terminate(ids: string[]): Promise<{ TerminatingInstances: unknown[] }> {
    const missing = ids.find((id) => !this.instances.has(id));
    if (missing) throw ec2Error('InvalidInstanceID.NotFound', `The instance ID '${missing}' does not exist`);
    const out = [];
    for (const id of ids) {
      const f = this.instances.get(id)!;
      const previous = { ...f.instance.State };
      if (f.instance.State?.Name !== 'terminated' && f.instance.State?.Name !== 'shutting-down') {
        // the OS shuts down: the agent gets SIGTERM and halts within its grace
        this.shutDown(f, 'Client.UserInitiatedShutdown: User initiated shutdown', f.machine?.stop(10_000));
      }
      out.push({ InstanceId: id, PreviousState: previous, CurrentState: { ...f.instance.State } });
    }
    return { TerminatingInstances: out };
  }
}

function tag(i: Instance, key: string): string | undefined {
  return i.Tags?.find((t) => t.Key === key)?.Value;
}
