import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../../src/agent/config/load.js';
import { nodeCapabilities, wireCapabilities, type CapabilityInputs } from '../../../../src/agent/probe/capabilities.js';
import { readCapabilitySources } from '../../../../src/agent/probe/capability-read.js';
import { cpuArch } from '../../../../src/agent/probe/cpu-level.js';
import { parseNvidiaSmi } from '../../../../src/agent/probe/gpu-parse.js';
import { probeGpus } from '../../../../src/agent/probe/gpu-probe.js';
import { platformOf } from '../../../../src/agent/probe/platform.js';
import { systemCommandRunner } from '../../../../src/agent/executor/command-runner.js';
import { gpuAllocation } from '../../../../src/agent/resources/gpu-allocation.js';
import { FIXTURES } from '../../../integration/harness.js';

const GPU = path.join(FIXTURES, 'gpu');
/** The real command runner with a PATH that finds one of the fake nvidia-smi scripts (or none). */
const runWith = (bin: string | null) => systemCommandRunner({ PATH: [bin && path.join(GPU, bin), '/usr/bin', '/bin'].filter(Boolean).join(':') });

const flags = (...names: string[]) => ['processor\t: 0', 'model name\t: Test CPU', `flags\t\t: ${names.join(' ')}`, ''].join('\n');
const V1 = ['fpu', 'cmov', 'cx8', 'fxsr', 'mmx', 'syscall', 'sse', 'sse2', 'lm'];
const V2 = [...V1, 'cx16', 'lahf_lm', 'popcnt', 'sse4_1', 'sse4_2', 'ssse3'];
const V3 = [...V2, 'avx', 'avx2', 'bmi1', 'bmi2', 'f16c', 'fma', 'abm', 'movbe', 'xsave'];
const V4 = [...V3, 'avx512f', 'avx512bw', 'avx512cd', 'avx512dq', 'avx512vl'];

describe('architecture and x86-64 level from /proc/cpuinfo', () => {
  it('reads the level as the highest one whose flags are all there', () => {
    expect(cpuArch(flags(...V1))).toMatchObject({ arch: 'x86_64', level: 1 });
    expect(cpuArch(flags(...V2))).toMatchObject({ arch: 'x86_64', level: 2 });
    expect(cpuArch(flags(...V3, 'hypervisor'))).toMatchObject({ arch: 'x86_64', level: 3, from: '/proc/cpuinfo flags (x86-64-v3)' });
    expect(cpuArch(flags(...V4))).toMatchObject({ arch: 'x86_64', level: 4 });
    // AVX-512 without AVX2's companions is still v2: levels build on each other
    expect(cpuArch(flags(...V2, 'avx512f', 'avx512bw', 'avx512cd', 'avx512dq', 'avx512vl'))).toMatchObject({ level: 2 });
    expect(cpuArch(flags('fpu', 'sse', 'sse2'))).toMatchObject({ arch: 'i686', level: null });
  });

  it('reads aarch64 from an ARM cpuinfo, and nothing from one it does not know', () => {
    const arm = 'processor\t: 0\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd evtstrm aes sve\nCPU implementer\t: 0x41\nCPU architecture: 8\n';
    expect(cpuArch(arm)).toEqual({ arch: 'aarch64', level: null, from: '/proc/cpuinfo CPU architecture: 8' });
    expect(cpuArch('processor\t: 0\ncpu\t\t: POWER9\n')).toEqual({ arch: null, level: null, from: null });
    expect(cpuArch(null).arch).toBeNull();
  });
});

describe('platform from os-release', () => {
  it.each([
    ['ID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.4"\n', 'el9'],
    ['ID="almalinux"\nVERSION_ID="8.10"\n', 'el8'],
    ['ID="centos"\nVERSION_ID="7"\n', 'el7'],
    ['ID="rhel"\nVERSION_ID="10.0"\n', 'el10'],
    ['ID=fedora\nVERSION_ID=40\n', 'fedora40'],
    ['ID="amzn"\nID_LIKE="centos rhel fedora"\nVERSION_ID="2023"\n', 'amzn2023'],
    ['ID=debian\nVERSION_ID="12"\n', 'debian12'],
    ['ID=debian\nVERSION_CODENAME=trixie\n', 'debian'],
    ['ID=ubuntu\nID_LIKE=debian\nVERSION_ID="22.04"\n', 'ubuntu22.04'],
    ['ID="opensuse-leap"\nVERSION_ID="15.5"\n', 'opensuse-leap15'],
    ['ID="sles"\nVERSION_ID="15.6"\n', 'sles15'],
    ['NAME="Nothing"\n', null],
  ])('%j → %s', (text, platform) => {
    expect(platformOf(text)).toBe(platform);
  });
});

describe('GPUs: nvidia-smi, the driver in /proc, the PCI devices in /sys, and the batch allocation', () => {
  it('parses nvidia-smi lines, names in between, and skips what does not fit', () => {
    const r = parseNvidiaSmi('0, GPU-aa, NVIDIA H100 80GB HBM3, 81559\n1, GPU-bb, Quadro RTX 8000, Ultra, [N/A]\nnot a gpu\n');
    expect(r.gpus).toEqual([
      { index: '0', uuid: 'GPU-aa', model: 'NVIDIA H100 80GB HBM3', memoryMb: 81559 },
      { index: '1', uuid: 'GPU-bb', model: 'Quadro RTX 8000, Ultra', memoryMb: null },
    ]);
    expect(r.problems).toEqual(['nvidia-smi line "not a gpu" is not index, uuid, name, memory; ignored']);
  });

  it('asks nvidia-smi first (a real script on PATH)', async () => {
    const p = await probeGpus(runWith('bin-two-a100'), path.join(GPU, 'sys-pci'));
    expect(p.from).toBe('nvidia-smi');
    expect(p.gpus).toEqual([
      { index: '0', uuid: 'GPU-5d3e8f1a-0c6b-4e7a-9d2f-1b2c3d4e5f60', model: 'NVIDIA A100-SXM4-40GB', memoryMb: 40960 },
      { index: '1', uuid: 'GPU-8a9b0c1d-2e3f-4a5b-8c7d-6e5f4a3b2c10', model: 'NVIDIA A100-SXM4-40GB', memoryMb: 40960 },
    ]);
  });

  it('falls back to the driver files, then to the PCI devices, saying what each source said', async () => {
    const proc = await probeGpus(runWith('bin-driver-down'), path.join(GPU, 'proc-driver'));
    expect(proc.from).toBe('/proc/driver/nvidia/gpus');
    expect(proc.gpus.map((g) => [g.index, g.model, g.uuid])).toEqual([
      ['0', 'Tesla T4', 'GPU-7a1c2bde-5f2c-22b1-9b0e-23d0c1f3a0aa'],
      ['1', 'Tesla T4', 'GPU-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0'],
    ]);
    expect(proc.tried[0]).toMatch(/^nvidia-smi: exit 9/);
    const pci = await probeGpus(runWith(null), path.join(GPU, 'sys-pci'));
    expect(pci.from).toBe('/sys/bus/pci/devices');
    expect(pci.gpus.map((g) => [g.index, g.model])).toEqual([
      ['0', 'NVIDIA PCI device 0x1eb8'],
      ['1', 'NVIDIA PCI device 0x2204'],
    ]);
    const none = await probeGpus(runWith(null), path.join(GPU, 'nowhere'));
    expect(none).toMatchObject({ gpus: [], from: null });
    expect(none.tried).toEqual([expect.stringMatching(/^nvidia-smi: .*ENOENT/), '/proc/driver/nvidia/gpus: absent', '/sys/bus/pci/devices: absent']);
  });

  it('reads the allocation, CUDA_VISIBLE_DEVICES first, an empty one meaning none', () => {
    expect(gpuAllocation({ CUDA_VISIBLE_DEVICES: '2,3', SLURM_JOB_GPUS: '2,3,4' })).toEqual({ ids: ['2', '3'], from: 'CUDA_VISIBLE_DEVICES', problems: [] });
    expect(gpuAllocation({ SLURM_STEP_GPUS: '1', SLURM_JOB_GPUS: '0,1' })).toMatchObject({ ids: ['1'], from: 'SLURM_STEP_GPUS' });
    expect(gpuAllocation({ CUDA_VISIBLE_DEVICES: 'NoDevFiles' })).toMatchObject({ ids: [], from: 'CUDA_VISIBLE_DEVICES' });
    expect(gpuAllocation({ GPU_DEVICE_ORDINAL: '0, 0 ,1' })).toMatchObject({ ids: ['0', '1'] });
    expect(gpuAllocation({ CUDA_VISIBLE_DEVICES: '0,$(rm)' })).toMatchObject({ ids: ['0'], problems: [expect.stringMatching(/entry "\$\(rm\)" is not a device/)] });
    expect(gpuAllocation({})).toBeNull();
  });
});

describe('capabilities: config > batch or MJF > probe, each saying where it came from', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'vmp-caps-'));
    await mkdir(path.join(root, 'proc'), { recursive: true });
    await mkdir(path.join(root, 'etc'), { recursive: true });
    await writeFile(path.join(root, 'proc/cpuinfo'), flags(...V3));
    await writeFile(path.join(root, 'etc/os-release'), 'ID="rocky"\nVERSION_ID="9.4"\n');
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const inputs = async (cfg: Record<string, unknown>, env: Record<string, string> = {}, bin: string | null = 'bin-two-a100'): Promise<CapabilityInputs> => ({
    ...(await readCapabilitySources(runWith(bin), env, root, 'x86_64')),
    config: loadConfig({ flags: cfg, env: {} }),
    scratch: { jobBytes: null, diskFreeMb: 9000 },
  });

  it('probes the node from the fake tree and the fake nvidia-smi', async () => {
    const c = nodeCapabilities(await inputs({}));
    expect(c.arch).toMatchObject({ value: 'x86_64', source: 'probe', origins: { probe: '/proc/cpuinfo flags (x86-64-v3)' } });
    expect(c.cpuLevel).toMatchObject({ value: 3, source: 'probe' });
    expect(c.platform).toMatchObject({ value: 'el9', source: 'probe', origins: { probe: '/etc/os-release' } });
    expect(c.gpus).toMatchObject({ source: 'probe', counts: { probe: 2 }, origins: { probe: 'nvidia-smi' } });
    expect(c.scratchMb).toMatchObject({ value: 9000, source: 'probe' });
    expect(wireCapabilities(c)).toEqual({
      arch: 'x86_64',
      cpuLevel: 3,
      platform: 'el9',
      tags: [],
      gpus: [
        { id: '0', model: 'NVIDIA A100-SXM4-40GB', memoryMb: 40960 },
        { id: '1', model: 'NVIDIA A100-SXM4-40GB', memoryMb: 40960 },
      ],
      scratchMb: 9000,
    });
  });

  it('takes the batch allocation over the probe, joined with what the probe knows of each device', async () => {
    const c = nodeCapabilities(await inputs({}, { CUDA_VISIBLE_DEVICES: 'GPU-8a9b0c1d-2e3f-4a5b-8c7d-6e5f4a3b2c10' }));
    expect(c.gpus.value).toEqual([{ id: 'GPU-8a9b0c1d-2e3f-4a5b-8c7d-6e5f4a3b2c10', model: 'NVIDIA A100-SXM4-40GB', memoryMb: 40960 }]);
    expect(c.gpus).toMatchObject({ source: 'batch', counts: { batch: 1, probe: 2 } });
    expect(c.gpus.reason).toMatch(/^1 from batch \(CUDA_VISIBLE_DEVICES=GPU-8a9b.*\): the GPUs the batch system gave this job.*; over probe 2 \(nvidia-smi\)$/);
    const none = nodeCapabilities(await inputs({}, { CUDA_VISIBLE_DEVICES: '' }));
    expect(none.gpus).toMatchObject({ value: [], source: 'batch' });
  });

  it('lets the config win: declared GPUs (with memory), arch and level, platform, site, tags, scratch', async () => {
    const c = nodeCapabilities(
      await inputs({ gpus: '3', gpuMemoryMb: '16000', arch: 'x86_64-v2', platform: 'EL8', site: 'CERN', tag: ['cvmfs', 'apptainer'], scratchMb: '500' }, { CUDA_VISIBLE_DEVICES: '1' }, null),
    );
    expect(c.gpus.value).toEqual([
      { id: '1', model: null, memoryMb: 16000 },
      { id: '0', model: null, memoryMb: 16000 },
      { id: '2', model: null, memoryMb: 16000 },
    ]);
    expect(c.gpus).toMatchObject({ source: 'config', counts: { config: 3, batch: 1, probe: 0 } });
    expect(c.cpuLevel).toMatchObject({ value: 2, source: 'config', candidates: { config: 2, probe: 3 } });
    expect(c.platform).toMatchObject({ value: 'el8', source: 'config' });
    expect(c.site).toMatchObject({ value: 'CERN', source: 'config' });
    expect(c.tags.value).toEqual(['cvmfs', 'apptainer']);
    expect(c.scratchMb).toMatchObject({ value: 500, source: 'config', candidates: { config: 500, probe: 9000 } });
    expect(nodeCapabilities(await inputs({ gpus: '0' })).gpus).toMatchObject({ value: [], source: 'config' });
  });

  it('takes the scratch limit of the job features over the disk free, and says why no GPU was found', async () => {
    const i = await inputs({}, {}, null);
    const c = nodeCapabilities({ ...i, scratch: { jobBytes: 2 * 1024 ** 3, diskFreeMb: 9000 } });
    expect(c.scratchMb).toMatchObject({ value: 2048, source: 'mjf' });
    expect(c.gpus.reason).toMatch(/^0 from probe: none found: nvidia-smi: .*ENOENT; \/proc\/driver\/nvidia\/gpus: absent; \/sys\/bus\/pci\/devices: absent$/);
  });

  it('refuses a bad declared value naming the flag, the value and what was expected', () => {
    expect(() => loadConfig({ flags: { arch: 'x86_64-v7' }, env: {} })).toThrow(/--arch "x86_64-v7": expected an architecture/);
    expect(() => loadConfig({ flags: { platform: 'el>=9' }, env: {} })).toThrow(/--platform "el>=9": expected a platform name/);
    expect(() => loadConfig({ flags: {}, env: { VMPILOT_TAGS: 'ok,not ok' } })).toThrow(/VMPILOT_TAGS "ok,not ok": expected tags/);
    expect(() => loadConfig({ flags: { gpus: '-1' }, env: {} })).toThrow(/--gpus "-1": expected an integer from 0 to 64/);
    expect(loadConfig({ flags: {}, env: { VMPILOT_TAGS: 'a,b', VMPILOT_SITE: 'RAL' } })).toMatchObject({ tags: ['a', 'b'], site: 'RAL' });
  });
});
