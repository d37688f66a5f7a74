/**
 * The `endpoint` command and its `test` subcommand (its action in
 * endpoint-test.ts, loaded when it runs). Other subcommands of `endpoint`
 * (disable, enable) attach to the same command: whichever registers first
 * makes it.
 */
import { Option, type Command } from 'commander';

/** The `endpoint` command of `program`, made when it is not there yet. */
export function endpointCommand(program: Command): Command {
  return (
    program.commands.find((c) => c.name() === 'endpoint') ??
    program.command('endpoint').description("Act on one of the director's endpoints (serve --config endpoints:).")
  );
}

/** Register `endpoint test NAME`. */
export function registerEndpointTestCommand(program: Command): void {
  endpointCommand(program)
    .command('test')
    .description('Start one instance of an endpoint end to end and print each stage with its time, or the stage that failed, why, and what to check.')
    .argument('<name>', 'endpoint name')
    .option('--shape <shape>', "the endpoint's shape to start (default: its first)")
    .option('--timeout <sec>', 'the whole test at most this long, cleanup apart (default: each stage within its own bound)')
    .option('--json', 'print one JSON document at the end: {endpoint, ok, totalMs, instanceId, probeGroup, stages: [{stage, ok, ms, detail, hints?}]}')
    .addOption(new Option('--server <url>', 'server URL').env('VMPILOT_SERVER').default('http://127.0.0.1:8080'))
    .addOption(new Option('--token <token>', 'the admin token').env('VMPILOT_TOKEN'))
    .addOption(new Option('--ca-file <pem>', 'CA certificate to trust for an https server').env('VMPILOT_CA_FILE'))
    .addHelpText(
      'after',
      `
The stages, in order (each bounded by the endpoint's timeouts):
  config       the endpoint and the shape exist and are enabled
  credentials  the driver answers: listing its resources succeeds
  create       the driver accepted the create (the instance has its id)
  booting      the driver says the machine runs
  registered   the machine's pilot registered with the instance's credential
  probe        a probe payload ran on that pilot (exit 0, its marker printed)
  halted       the pilot, drained, halted
  deleted      the director removed the instance at its driver
The instance serves only a group made for the test (vmpilot-probe-<random>),
so it takes no real work. When a stage fails, the test cancels the probe,
stops the instance and waits until it is deleted (a last "deleted" line).

Exit status: 0 every stage passed; 5 a stage failed (VMP_ENDPOINT_TEST);
3 the server refused (no director: VMP_CONFLICT; no such endpoint: VMP_NOT_FOUND).

Examples:
  vmpilot-server endpoint test laptop
  vmpilot-server endpoint test cluster --shape big --timeout 900
  vmpilot-server endpoint test openstack-a --json | jq '.stages[] | select(.ok == false)'`,
    )
    .action(async (name: string, o) => {
      const { endpointTest } = await import('./endpoint-test.js');
      await endpointTest(name, o);
    });
}
