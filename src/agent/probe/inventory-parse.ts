/**
 * Pure readers of what the kernel and the distribution say about the node:
 * /proc/cpuinfo, /etc/os-release, the DMI strings in /sys/class/dmi/id,
 * /sys/hypervisor/type and the clock sources the kernel offers. Each takes
 * the file's text (or null when the file is absent) and never throws.
 */

/** The first value of `key` in /proc/cpuinfo text ("model name : AMD EPYC" → "AMD EPYC"). */
function cpuinfoValue(cpuinfo: string, key: string): string | null {
  const m = new RegExp(`^${key}[ \\t]*:[ \\t]*(.*)$`, 'm').exec(cpuinfo);
  const v = m?.[1]?.replace(/\s+/g, ' ').trim();
  return v ? v : null;
}

/** What /proc/cpuinfo says: the CPU model, and the `hypervisor` flag (null when the CPU lists no x86 flags). */
export interface CpuInfo {
  model: string | null;
  /** true: x86 CPUID says a hypervisor runs us; false: x86 flags without it (bare metal); null: not known (no flags line). */
  hypervisorFlag: boolean | null;
}

/** Parse /proc/cpuinfo: `model name` (x86; `cpu model` on MIPS, `cpu` on POWER) and the `hypervisor` flag. */
export function parseCpuinfo(text: string | null): CpuInfo {
  if (text === null) return { model: null, hypervisorFlag: null };
  const model = cpuinfoValue(text, 'model name') ?? cpuinfoValue(text, 'cpu model') ?? cpuinfoValue(text, 'cpu');
  const flags = cpuinfoValue(text, 'flags');
  return { model, hypervisorFlag: flags === null ? null : flags.split(' ').includes('hypervisor') };
}

/** The value of a KEY=value line of os-release, unquoted ("…", '…' or bare). */
export function osReleaseValue(text: string, key: string): string | null {
  const m = new RegExp(`^${key}=(.*)$`, 'm').exec(text);
  if (!m) return null;
  let v = m[1]!.trim();
  const q = v[0];
  if ((q === '"' || q === "'") && v.endsWith(q) && v.length >= 2) v = v.slice(1, -1);
  v = v.replace(/\\(["'$`\\])/g, '$1').trim();
  return v || null;
}

/** The OS from os-release: PRETTY_NAME, else NAME and VERSION_ID; null when it says neither. */
export function parseOsRelease(text: string | null): string | null {
  if (text === null) return null;
  const pretty = osReleaseValue(text, 'PRETTY_NAME');
  if (pretty) return pretty;
  const name = osReleaseValue(text, 'NAME');
  if (!name) return null;
  const version = osReleaseValue(text, 'VERSION_ID');
  return version ? `${name} ${version}` : name;
}

/** What the firmware and the kernel say about a hypervisor; null for a file that is absent. */
export interface HypervisorHints {
  /** /sys/class/dmi/id/sys_vendor ("QEMU", "VMware, Inc.", "Amazon EC2", ...). */
  sysVendor: string | null;
  /** /sys/class/dmi/id/product_name ("OpenStack Nova", "Google Compute Engine", "Virtual Machine", ...). */
  productName: string | null;
  /** /sys/hypervisor/type ("xen"). */
  hypervisorType: string | null;
  /** /sys/devices/system/clocksource/clocksource0/available_clocksource ("tsc kvm-clock"). */
  clocksources: string | null;
  /** From /proc/cpuinfo (see CpuInfo). */
  hypervisorFlag: boolean | null;
}

/**
 * DMI vendor and product strings of virtual machines, clouds first (an
 * OpenStack or EC2 guest is more useful to know as such than as KVM), then
 * the hypervisors. Matched against "sys_vendor product_name".
 */
const DMI_NAMES: ReadonlyArray<readonly [RegExp, string]> = [
  [/OpenStack/i, 'OpenStack'],
  [/Amazon EC2/i, 'Amazon EC2'],
  [/^Google\b.*Compute Engine/i, 'Google'],
  [/Alibaba Cloud/i, 'Alibaba Cloud'],
  [/KubeVirt/i, 'KubeVirt'],
  [/VMware/i, 'VMware'],
  [/VirtualBox|innotek/i, 'VirtualBox'],
  [/^Microsoft Corporation Virtual Machine/i, 'Microsoft Hyper-V'],
  [/Hyper-V/i, 'Microsoft Hyper-V'],
  [/Parallels/i, 'Parallels'],
  [/BHYVE/i, 'bhyve'],
  [/Bochs/i, 'Bochs'],
  [/\bKVM\b/, 'KVM'],
  [/QEMU/i, 'QEMU'],
  [/\bXen\b/i, 'Xen'],
];

/** Clock sources only a hypervisor offers. */
const CLOCKSOURCE_NAMES: ReadonlyArray<readonly [RegExp, string]> = [
  [/(^|\s)kvm-clock(\s|$)/, 'KVM'],
  [/(^|\s)xen(\s|$)/, 'Xen'],
  [/(^|\s)hyperv_clocksource/, 'Microsoft Hyper-V'],
];

/** The hypervisor's name from the hints, strongest first: DMI strings, /sys/hypervisor/type, clock sources. */
function hypervisorName(h: HypervisorHints): string | null {
  const dmi = [h.sysVendor, h.productName].map((s) => s?.trim() ?? '').filter(Boolean).join(' ');
  for (const [re, name] of DMI_NAMES) if (re.test(dmi)) return name;
  const type = h.hypervisorType?.trim().toLowerCase();
  if (type === 'xen') return 'Xen';
  if (type) return type;
  for (const [re, name] of CLOCKSOURCE_NAMES) if (re.test(h.clocksources ?? '')) return name;
  return null;
}

/**
 * Virtual or not, and under which hypervisor. On x86 the CPUID
 * `hypervisor` flag decides "virtual" (so bare-metal cloud instances, whose
 * DMI still names the cloud, are physical, with no hypervisor); elsewhere a
 * recognised hypervisor means virtual and none means unknown.
 */
export function detectVirtualisation(h: HypervisorHints): { virtual: boolean | null; hypervisor: string | null } {
  if (h.hypervisorFlag === false) return { virtual: false, hypervisor: null };
  const hypervisor = hypervisorName(h);
  if (h.hypervisorFlag === true) return { virtual: true, hypervisor };
  return hypervisor === null ? { virtual: null, hypervisor: null } : { virtual: true, hypervisor };
}
