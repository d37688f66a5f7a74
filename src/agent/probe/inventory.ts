/**
 * The one-time inventory of the node (CPU model, OS, virtualisation), from
 * systeminformation, which spawns processes: run once at start, never on a
 * heartbeat. A failure gives nulls, never an error.
 */

/** What the node is. */
export interface Inventory {
  cpuModel: string | null;
  os: string | null;
  kernel: string | null;
  virtual: boolean | null;
  hypervisor: string | null;
}

/** Read the inventory (about 100 ms). */
export async function readInventory(): Promise<Inventory> {
  try {
    const si = await import('systeminformation');
    const [cpu, os, sys] = await Promise.all([si.cpu(), si.osInfo(), si.system()]);
    return {
      cpuModel: `${cpu.manufacturer} ${cpu.brand}`.trim() || null,
      os: `${os.distro} ${os.release}`.trim() || null,
      kernel: os.kernel || null,
      virtual: typeof sys.virtual === 'boolean' ? sys.virtual : null,
      hypervisor: sys.virtualHost || null,
    };
  } catch {
    return { cpuModel: null, os: null, kernel: null, virtual: null, hypervisor: null };
  }
}
