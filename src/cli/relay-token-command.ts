import type { Command } from 'commander';

/** `vmpilot-server relay-token`: a relay's token and the server entry for it. The action loads its module lazily. */
export function registerRelayTokenCommand(program: Command): void {
  program
    .command('relay-token')
    .description("Make a relay's token (in a file) and print the relays.tokens entry that tells the server about it.")
    .option('--name <name>', "the relay's name, shown with its pilots (e.g. login01)")
    .option('--site <site>', 'the site it serves (e.g. CC-IN2P3)')
    .option('--out <file>', 'the token file (made mode 0600 when missing; an existing one is read, not replaced)')
    .addHelpText(
      'after',
      `
The server keeps only the token's sha256: add the printed line under
relays.tokens in serve --config and restart the server. With
"relays: { required: true, ... }" pilots may register only through a known
relay. docs/hpc.md has a worked example.

Example:
  vmpilot-server relay-token --name login01 --site CC-IN2P3 --out /etc/vmpilot/relay.token
  vmpilot relay --listen 0.0.0.0:8081 --server https://pilots.example.org --relay-token-file /etc/vmpilot/relay.token`,
    )
    .action(async (o: Record<string, string | undefined>) => {
      const { relayTokenCommand } = await import('../server/relay-token.js');
      await relayTokenCommand(o);
    });
}
