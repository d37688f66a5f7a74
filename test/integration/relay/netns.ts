/**
 * Network namespaces of the test's own (`ip netns`, root): a "compute node"
 * that reaches only the relay's address, or nothing at all. Addresses are
 * 10.200.x.y/30 pairs that exist only on the test's veth pair; names are
 * unique per run, and `remove` deletes exactly what `computeNode` made.
 */
import { execFileSync, spawn, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';

/** A namespace and how to run things in it. */
export interface ComputeNode {
  name: string;
  /** The relay side's address in the root namespace (on the veth), or null for a namespace with no link. */
  relayAddress: string | null;
  /** The node's own address (on its end of the veth), or null. */
  nodeAddress: string | null;
  /** Spawn `command args` inside the namespace (`ip netns exec` execs it: the pid is the command's). */
  spawn(command: string, args: string[], options?: SpawnOptions): ReturnType<typeof spawn>;
  /** Delete the namespace and the veth pair (idempotent). */
  remove(): void;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

/** Why namespaces cannot be made here, or null when they can. */
export function netnsMissing(): string | null {
  if (process.getuid?.() !== 0) return 'this test needs root (ip netns, veth pairs)';
  if (!['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].some(existsSync)) return 'this test needs ip (iproute2)';
  return null;
}

/** A /30 in 10.200.0.0/16 that no interface of the root namespace uses yet: [relay side, node side]. */
function freeSubnet(): [string, string] {
  const used = ip('-4', '-o', 'addr', 'show');
  for (;;) {
    const [a, b] = randomBytes(2);
    const base = `10.200.${a}.`;
    const start = (b! & 0xfc) || 4;
    if (used.includes(`${base}${start + 1}/`) || used.includes(`${base}${start + 2}/`)) continue;
    return [`${base}${start + 1}`, `${base}${start + 2}`];
  }
}

/**
 * A namespace whose only link is a veth to the root namespace (`linked`,
 * the default), addresses on that link only, no default route: from inside,
 * the root side's address is all there is. Unlinked: loopback only.
 */
export function computeNode(linked = true): ComputeNode {
  const tag = randomBytes(3).toString('hex');
  const name = `vmp-cn-${process.pid}-${tag}`;
  const outer = `vr${tag}a`;
  const inner = `vr${tag}b`;
  let relayAddress: string | null = null;
  let nodeAddress: string | null = null;
  let removed = false;
  const remove = () => {
    if (removed) return;
    removed = true;
    try {
      ip('netns', 'del', name);
    } catch {
      // not made
    }
    if (linked) {
      try {
        ip('link', 'del', outer);
      } catch {
        // gone with the namespace's end
      }
    }
  };
  try {
    ip('netns', 'add', name);
    ip('netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up');
    if (linked) {
      [relayAddress, nodeAddress] = freeSubnet();
      ip('link', 'add', outer, 'type', 'veth', 'peer', 'name', inner);
      ip('link', 'set', inner, 'netns', name);
      ip('addr', 'add', `${relayAddress}/30`, 'dev', outer);
      ip('link', 'set', outer, 'up');
      ip('netns', 'exec', name, 'ip', 'addr', 'add', `${nodeAddress}/30`, 'dev', inner);
      ip('netns', 'exec', name, 'ip', 'link', 'set', inner, 'up');
    }
  } catch (err) {
    remove();
    throw err;
  }
  return {
    name,
    relayAddress,
    nodeAddress,
    spawn: (command, args, options = {}) => spawn('ip', ['netns', 'exec', name, command, ...args], options),
    remove,
  };
}

/** Whether a TCP connection from inside `node` to host:port gets through (curl, one try, a few seconds at most). */
export function connects(node: ComputeNode, url: string): Promise<{ ok: boolean; why: string }> {
  return new Promise((resolve) => {
    const child = node.spawn('curl', ['-sS', '-o', '/dev/null', '--max-time', '5', '--connect-timeout', '3', url], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => resolve({ ok: code === 0, why: err.trim() || `curl exited ${code}` }));
  });
}
