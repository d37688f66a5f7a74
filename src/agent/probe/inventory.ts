/**
 * The one-time inventory of the node (CPU model, OS, kernel, virtual or
 * not and under which hypervisor) from a few small files the kernel and the
 * distribution provide: no process is spawned, no library loaded. Run by
 * `vmpilot probe`. A file that is absent or unreadable gives nulls, never an
 * error.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { detectVirtualisation, parseCpuinfo, parseOsRelease } from './inventory-parse.js';

/** What the node is. */
export interface Inventory {
  cpuModel: string | null;
  os: string | null;
  kernel: string | null;
  virtual: boolean | null;
  hypervisor: string | null;
}

/** The files read, relative to the root. */
export const INVENTORY_FILES = {
  cpuinfo: 'proc/cpuinfo',
  osRelease: ['etc/os-release', 'usr/lib/os-release'],
  sysVendor: 'sys/class/dmi/id/sys_vendor',
  productName: 'sys/class/dmi/id/product_name',
  hypervisorType: 'sys/hypervisor/type',
  clocksources: 'sys/devices/system/clocksource/clocksource0/available_clocksource',
} as const;

/** The text of root/rel, or null when it cannot be read. */
async function text(root: string, rel: string): Promise<string | null> {
  return readFile(path.join(root, rel), 'utf8').catch(() => null);
}

/**
 * Read the inventory of the node whose file tree starts at `root` (tests
 * give a fake tree) and whose kernel release is `kernel`.
 */
export async function readInventory(root = '/', kernel: string | null = os.release()): Promise<Inventory> {
  const f = INVENTORY_FILES;
  const [cpuinfo, osRelease, osReleaseLib, sysVendor, productName, hypervisorType, clocksources] = await Promise.all([
    text(root, f.cpuinfo),
    text(root, f.osRelease[0]),
    text(root, f.osRelease[1]),
    text(root, f.sysVendor),
    text(root, f.productName),
    text(root, f.hypervisorType),
    text(root, f.clocksources),
  ]);
  const cpu = parseCpuinfo(cpuinfo);
  const virt = detectVirtualisation({ sysVendor, productName, hypervisorType, clocksources, hypervisorFlag: cpu.hypervisorFlag });
  return {
    cpuModel: cpu.model,
    // /etc/os-release wins; /usr/lib/os-release is the distribution's fallback
    os: parseOsRelease(osRelease) ?? parseOsRelease(osReleaseLib),
    kernel: kernel?.trim() || null,
    ...virt,
  };
}
