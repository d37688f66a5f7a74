/**
 * The CPU's architecture and, on x86-64, its micro-architecture level, from
 * /proc/cpuinfo. Pure. The levels are those of the x86-64 psABI (v1 is any
 * x86-64; v2 adds SSE4.2 and POPCNT, v3 AVX2, FMA and BMI, v4 AVX-512): a
 * binary built for a level runs on that level and every higher one, which is
 * why a payload's `arch: x86_64-v3` is met by a v4 node.
 */

/** The /proc/cpuinfo flags each level adds to the one below (`abm` is how the kernel names LZCNT). */
export const X86_LEVEL_FLAGS: readonly (readonly string[])[] = [
  ['cx16', 'lahf_lm', 'popcnt', 'sse4_1', 'sse4_2', 'ssse3'],
  ['avx', 'avx2', 'bmi1', 'bmi2', 'f16c', 'fma', 'abm', 'movbe', 'xsave'],
  ['avx512f', 'avx512bw', 'avx512cd', 'avx512dq', 'avx512vl'],
];

/** What /proc/cpuinfo says of the architecture: its name, the x86-64 level, and which line said it. */
export interface CpuArch {
  arch: string | null;
  level: number | null;
  from: string | null;
}

/** The value of the first `key : value` line, or null. */
function line(text: string, key: string): string | null {
  const m = new RegExp(`^${key}[ \\t]*:[ \\t]*(.*)$`, 'm').exec(text);
  return m ? m[1]!.trim() : null;
}

/** The highest x86-64 level whose flags (and those of every level below) are all in `flags`; 1 for any x86-64. */
export function x86Level(flags: ReadonlySet<string>): number {
  let level = 1;
  for (const added of X86_LEVEL_FLAGS) {
    if (!added.every((f) => flags.has(f))) break;
    level++;
  }
  return level;
}

/**
 * Read the architecture from /proc/cpuinfo text: x86 CPUs list `flags`
 * (`lm`, long mode, means x86_64 and a level; without it, i686); ARM CPUs
 * give `CPU architecture: 8` (aarch64; 7 and lower: armv7l). Null values
 * when the text says neither (the caller falls back to the kernel's name).
 */
export function cpuArch(cpuinfo: string | null): CpuArch {
  if (cpuinfo === null) return { arch: null, level: null, from: null };
  const flags = line(cpuinfo, 'flags');
  if (flags !== null) {
    const set = new Set(flags.split(/\s+/));
    if (!set.has('lm')) return { arch: 'i686', level: null, from: '/proc/cpuinfo flags (no lm)' };
    const level = x86Level(set);
    return { arch: 'x86_64', level, from: `/proc/cpuinfo flags (x86-64-v${level})` };
  }
  const armArch = line(cpuinfo, 'CPU architecture');
  if (armArch !== null && /^\d+/.test(armArch)) {
    const v = parseInt(armArch, 10);
    return { arch: v >= 8 ? 'aarch64' : 'armv7l', level: null, from: `/proc/cpuinfo CPU architecture: ${armArch}` };
  }
  return { arch: null, level: null, from: null };
}
