import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { AGENT_FILES, applySandbox, bwrapCommand, envFileText, outerEnv, unshareCommand, type SandboxSpec } from '../../../../src/agent/isolation/sandbox.js';

const spec: SandboxSpec = {
  stateDir: '/j/state',
  payloadDir: '/j/state/payloads/7',
  sharedDirs: ['/j/state/machinefeatures'],
  protect: AGENT_FILES,
  hide: ['/j/token', '/j/state/inside-anyway'],
  uid: 1000,
  gid: 1000,
  mapUser: true,
};

describe('the sandbox commands', () => {
  it('bwrap: user and PID namespace, the state dir an empty read-only tmpfs with the payload dir and shared dirs back, secrets empty', () => {
    const argv = bwrapCommand(spec, ['/bin/true']);
    const s = argv.join(' ');
    expect(argv.slice(0, 4)).toEqual(['bwrap', '--unshare-user', '--unshare-pid', '--die-with-parent']);
    expect(s).toContain('--proc /proc --tmpfs /j/state --bind /j/state/payloads/7 /j/state/payloads/7 --ro-bind-try /j/state/machinefeatures /j/state/machinefeatures');
    expect(s).toContain('--ro-bind-try /j/state/payloads/7/stdout /j/state/payloads/7/stdout');
    expect(s).toContain('--ro-bind-try /dev/null /j/token');
    expect(s).not.toContain('inside-anyway'); // under the tmpfs already
    expect(argv.slice(-6)).toEqual(['--remount-ro', '/j/state', '--chdir', '/j/state/payloads/7', '--', '/bin/true']);
  });

  it('unshare: the setup script gets the dirs, the names and the files counted, then the command', () => {
    const argv = unshareCommand(spec, ['/bin/true', 'a b']);
    expect(argv.slice(0, 9)).toEqual(['unshare', '--user', '--map-root-user', '--mount', '--pid', '--fork', '--kill-child', '--mount-proc', '--']);
    const args = argv.slice(13);
    expect(args).toEqual(['/j/state', '/j/state/payloads/7', '1', '1000', '1000', '1', '/j/state/machinefeatures', String(AGENT_FILES.length), ...AGENT_FILES, '1', '/j/token', '--', '/bin/true', 'a b']);
  });

  it('the payload environment goes in a file of sh exports that sh reads back exactly', () => {
    const env = { A: "it's", B: 'two\nlines', C: '$HOME `x` "q"', 'BAD-NAME': 'dropped' };
    const text = envFileText(env);
    expect(text).not.toContain('BAD-NAME');
    const back = execFileSync('/bin/sh', ['-c', `${text}printf '%s|' "$A" "$B" "$C"`], { encoding: 'utf8', env: {} });
    expect(back).toBe(`it's|two\nlines|$HOME \`x\` "q"|`);
  });

  it('outside the sandbox nothing of the payload environment but its id and directory (no LD_PRELOAD, no PATH of its own)', () => {
    const payloadEnv = { PATH: '/evil', LD_PRELOAD: '/evil.so', VMPILOT_PAYLOAD_ID: '7', VMPILOT_PAYLOAD_DIR: '/j/state/payloads/7', SECRET: 's' };
    expect(outerEnv(payloadEnv)).toEqual({ PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', VMPILOT_PAYLOAD_ID: '7', VMPILOT_PAYLOAD_DIR: '/j/state/payloads/7' });
    const s = applySandbox({ command: ['run-me'], env: payloadEnv, sandbox: { prefix: ['bwrap', '--'], envFile: '/j/state/payloads/7/environment', outerEnv: outerEnv(payloadEnv) } });
    expect(s).toMatchObject({ command: ['bwrap', '--', '/bin/sh', '-c', '. "$0" && exec "$@"', '/j/state/payloads/7/environment', 'run-me'], sandboxed: true });
    expect(s.env.LD_PRELOAD).toBeUndefined();
    expect('sandbox' in s).toBe(false);
    const plain = { command: ['x'], env: { A: '1' } };
    expect(applySandbox(plain)).toBe(plain);
  });
});
