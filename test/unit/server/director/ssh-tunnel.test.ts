import { describe, expect, it } from 'vitest';
import type { SshSettings } from '../../../../src/server/director/driver-settings.js';
import { nextPause, tunnelArgv } from '../../../../src/server/director/drivers/ssh-tunnel.js';

const ssh: SshSettings = {
  host: 'login.example.org',
  user: 'pilot',
  port: 2222,
  key: '/etc/vmpilot/id_ed25519',
  options: ['StrictHostKeyChecking=yes'],
  controlPersistSec: 60,
  reverse: { listen: { host: '127.0.0.1', port: 18443 }, to: { host: '::1', port: 8443 } },
};

describe('the reverse tunnel', () => {
  it('is its own ssh connection that fails on a refused forward and ends a dead connection', () => {
    const argv = tunnelArgv(ssh, ssh.reverse!);
    expect(argv.join(' ')).toBe(
      '-v -N -o BatchMode=yes -o ControlMaster=no -o ControlPath=none -o ExitOnForwardFailure=yes -o ServerAliveInterval=15 -o ServerAliveCountMax=3 ' +
        '-p 2222 -i /etc/vmpilot/id_ed25519 -o IdentitiesOnly=yes -l pilot -o StrictHostKeyChecking=yes -R 127.0.0.1:18443:[::1]:8443 login.example.org',
    );
  });

  it('waits longer after each quick failure, up to a minute, and little again after a healthy run', () => {
    const pauses: number[] = [];
    let p = 500;
    for (let i = 0; i < 9; i++) pauses.push((p = nextPause(p, 2_000)));
    expect(pauses).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
    expect(nextPause(60_000, 61_000)).toBe(1_000);
  });
});
