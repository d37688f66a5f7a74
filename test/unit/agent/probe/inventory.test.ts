import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { detectVirtualisation, parseCpuinfo, parseOsRelease } from '../../../../src/agent/probe/inventory-parse.js';
import { INVENTORY_FILES, readInventory } from '../../../../src/agent/probe/inventory.js';

const X86_CPUINFO = (model: string, flags: string) =>
  ['processor\t: 0', 'vendor_id\t: GenuineIntel', 'cpu family\t: 6', `model name\t: ${model}`, 'cpu MHz\t\t: 2394.454', `flags\t\t: ${flags}`, '', 'processor\t: 1', `model name\t: ${model}`, `flags\t\t: ${flags}`, ''].join('\n');
const VM_FLAGS = 'fpu vme de pse tsc msr pae sse sse2 ht syscall nx lm hypervisor lahf_lm avx2';
const METAL_FLAGS = 'fpu vme de pse tsc msr pae sse sse2 ht syscall nx lm vmx smx est lahf_lm avx2';
const ARM_CPUINFO = 'processor\t: 0\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid\nCPU implementer\t: 0x41\n';
const DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n';

describe('inventory parsers', () => {
  it('cpuinfo: the model (whitespace tidied) and the hypervisor flag, on x86, ARM and POWER', () => {
    expect(parseCpuinfo(X86_CPUINFO('Intel(R) Xeon(R) CPU E5-2680 v4   @ 2.40GHz', VM_FLAGS))).toEqual({ model: 'Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz', hypervisorFlag: true });
    expect(parseCpuinfo(X86_CPUINFO('AMD EPYC 7763 64-Core Processor', METAL_FLAGS))).toEqual({ model: 'AMD EPYC 7763 64-Core Processor', hypervisorFlag: false });
    expect(parseCpuinfo(ARM_CPUINFO)).toEqual({ model: null, hypervisorFlag: null });
    expect(parseCpuinfo('processor\t: 0\ncpu\t\t: POWER9 (architected), altivec supported\nclock\t\t: 2750.000000MHz\n').model).toBe('POWER9 (architected), altivec supported');
    expect(parseCpuinfo(null)).toEqual({ model: null, hypervisorFlag: null });
    expect(parseCpuinfo('model name\t: \nflags\t\t: fpu\n')).toEqual({ model: null, hypervisorFlag: false });
  });

  it('os-release: PRETTY_NAME, else NAME and VERSION_ID, quotes and escapes undone', () => {
    expect(parseOsRelease(DEBIAN)).toBe('Debian GNU/Linux 12 (bookworm)');
    expect(parseOsRelease('NAME="Rocky Linux"\nVERSION_ID="9.4"\n')).toBe('Rocky Linux 9.4');
    expect(parseOsRelease("NAME='Alpine Linux'\n")).toBe('Alpine Linux');
    expect(parseOsRelease('NAME=Arch\nPRETTY_NAME=""\n')).toBe('Arch');
    expect(parseOsRelease('PRETTY_NAME="Say \\"hi\\" OS"\n')).toBe('Say "hi" OS');
    expect(parseOsRelease('ID=thing\n')).toBeNull();
    expect(parseOsRelease(null)).toBeNull();
  });

  const hints = { sysVendor: null, productName: null, hypervisorType: null, clocksources: null, hypervisorFlag: true };
  it.each([
    ['QEMU', 'Standard PC (i440FX + PIIX, 1996)', 'QEMU'],
    ['QEMU', 'KVM Virtual Machine', 'KVM'],
    ['Red Hat', 'KVM', 'KVM'],
    ['VMware, Inc.', 'VMware Virtual Platform', 'VMware'],
    ['Xen', 'HVM domU', 'Xen'],
    ['Microsoft Corporation', 'Virtual Machine', 'Microsoft Hyper-V'],
    ['Amazon EC2', 't3.micro', 'Amazon EC2'],
    ['Google', 'Google Compute Engine', 'Google'],
    ['OpenStack Foundation', 'OpenStack Nova', 'OpenStack'],
    ['RDO', 'OpenStack Compute', 'OpenStack'],
    ['innotek GmbH', 'VirtualBox', 'VirtualBox'],
    ['Alibaba Cloud', 'Alibaba Cloud ECS', 'Alibaba Cloud'],
  ])('DMI %s / %s → %s', (sysVendor, productName, name) => {
    expect(detectVirtualisation({ ...hints, sysVendor: `${sysVendor}\n`, productName: `${productName}\n` })).toEqual({ virtual: true, hypervisor: name });
  });

  it('without DMI: /sys/hypervisor/type, then the clock sources; a hypervisor nobody names is still virtual', () => {
    expect(detectVirtualisation({ ...hints, hypervisorType: 'xen\n' })).toEqual({ virtual: true, hypervisor: 'Xen' });
    expect(detectVirtualisation({ ...hints, clocksources: 'tsc kvm-clock acpi_pm \n' })).toEqual({ virtual: true, hypervisor: 'KVM' });
    expect(detectVirtualisation({ ...hints, clocksources: 'hyperv_clocksource_tsc_page acpi_pm\n' })).toEqual({ virtual: true, hypervisor: 'Microsoft Hyper-V' });
    expect(detectVirtualisation({ ...hints, clocksources: 'tsc hpet acpi_pm\n' })).toEqual({ virtual: true, hypervisor: null });
  });

  it('x86 without the hypervisor flag is physical, even where DMI names a cloud (bare-metal instances)', () => {
    expect(detectVirtualisation({ ...hints, hypervisorFlag: false, sysVendor: 'Amazon EC2', productName: 'm5.metal', clocksources: 'tsc hpet' })).toEqual({ virtual: false, hypervisor: null });
  });

  it('no x86 flags (ARM): a recognised hypervisor means virtual, none means not known', () => {
    expect(detectVirtualisation({ ...hints, hypervisorFlag: null, sysVendor: 'QEMU', productName: 'KVM Virtual Machine' })).toEqual({ virtual: true, hypervisor: 'KVM' });
    expect(detectVirtualisation({ ...hints, hypervisorFlag: null, sysVendor: 'Ampere(R)', productName: 'Mt.Jade' })).toEqual({ virtual: null, hypervisor: null });
  });
});

describe('readInventory on a fake file tree', () => {
  const roots: string[] = [];
  afterEach(async () => {
    for (const r of roots.splice(0)) await rm(r, { recursive: true, force: true });
  });
  async function tree(files: Record<string, string>): Promise<string> {
    const root = await mkdtemp(path.join(os.tmpdir(), 'vmp-inv-'));
    roots.push(root);
    for (const [rel, body] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
      await writeFile(path.join(root, rel), body);
    }
    return root;
  }

  it('an OpenStack VM', async () => {
    const root = await tree({
      [INVENTORY_FILES.cpuinfo]: X86_CPUINFO('Intel Xeon Processor (Cascadelake)', VM_FLAGS),
      [INVENTORY_FILES.osRelease[0]]: 'NAME="AlmaLinux"\nVERSION_ID="9.3"\n',
      [INVENTORY_FILES.sysVendor]: 'OpenStack Foundation\n',
      [INVENTORY_FILES.productName]: 'OpenStack Nova\n',
      [INVENTORY_FILES.clocksources]: 'kvm-clock tsc acpi_pm \n',
    });
    expect(await readInventory(root, '5.14.0-362.el9.x86_64\n')).toEqual({
      cpuModel: 'Intel Xeon Processor (Cascadelake)',
      os: 'AlmaLinux 9.3',
      kernel: '5.14.0-362.el9.x86_64',
      virtual: true,
      hypervisor: 'OpenStack',
    });
  });

  it('a physical batch node with os-release only under /usr/lib', async () => {
    const root = await tree({
      [INVENTORY_FILES.cpuinfo]: X86_CPUINFO('AMD EPYC 7763 64-Core Processor', METAL_FLAGS),
      [INVENTORY_FILES.osRelease[1]]: DEBIAN,
      [INVENTORY_FILES.sysVendor]: 'Dell Inc.\n',
      [INVENTORY_FILES.productName]: 'PowerEdge R7525\n',
    });
    expect(await readInventory(root, '6.1.0-18-amd64')).toEqual({ cpuModel: 'AMD EPYC 7763 64-Core Processor', os: 'Debian GNU/Linux 12 (bookworm)', kernel: '6.1.0-18-amd64', virtual: false, hypervisor: null });
  });

  it('nothing readable: all null, no error', async () => {
    const root = await tree({});
    await mkdir(path.join(root, INVENTORY_FILES.cpuinfo), { recursive: true }); // a directory where a file should be
    expect(await readInventory(root, null)).toEqual({ cpuModel: null, os: null, kernel: null, virtual: null, hypervisor: null });
  });
});

describe('readInventory on this machine', () => {
  // Cross-checked against tools that find the same facts their own way: lscpu
  // (util-linux, essential in Debian; CPUID for the hypervisor), uname, the shell reading os-release.
  it('says what lscpu, uname and os-release say, and is non-null where the machine has the fact', async () => {
    const inv = await readInventory();
    const lscpu = execFileSync('lscpu', { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' } });
    const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(lscpu)?.[1]?.trim() ?? null;
    expect(inv.kernel).toBe(execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim());
    const model = field('Model name');
    if (model !== null && /^model name\s*:/m.test(await readFile('/proc/cpuinfo', 'utf8'))) expect(inv.cpuModel).toBe(model.replace(/\s+/g, ' '));
    const pretty = execFileSync('sh', ['-c', '. /etc/os-release && printf %s "${PRETTY_NAME:-$NAME $VERSION_ID}"'], { encoding: 'utf8' }).trim();
    expect(inv.os).toBe(pretty || null);
    if (field('Hypervisor vendor') !== null) {
      // lscpu read the hypervisor from CPUID: we must know we are virtual, and name it from DMI, /sys/hypervisor or the clock sources
      expect(inv.virtual).toBe(true);
      expect(inv.hypervisor).not.toBeNull();
    } else if (/^Flags:/m.test(lscpu)) {
      expect(inv).toMatchObject({ virtual: false, hypervisor: null });
    }
  });
});
