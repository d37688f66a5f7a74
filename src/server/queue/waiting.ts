/**
 * Why a queued payload waits: a pure function of what it needs (cores,
 * memory, requirements, and isolation when its group requires it) and of
 * what could run it — today the live pilots,
 * each with its cores, memory and capabilities; later the director's
 * endpoint shapes too, as more `Runner`s with their own label and noun. It
 * answers "could anything ever run this", not "is something free now": a
 * payload that waits its turn behind others gets null.
 *
 *   every runner lacks something ──▶ a need that none meets?
 *        ├─ yes ──▶ "no live pilot has a GPU (live pilots: no GPU)"   (one clause per such need)
 *        └─ no  ──▶ "no live pilot has all of it at once: pilot 3 lacks site CERN; pilot 4 lacks a GPU"
 */
import { minimumCores, unmetRequirements, type Capabilities, type CoreRequest, type Requirements, type Unmet } from '../../protocol/index.js';

/** Something that could run payloads: a live pilot (later also an endpoint's machine shape). */
export interface Runner {
  /** How it is named in the reason: `pilot 3`. */
  label: string;
  cores: number;
  memoryMb: number;
  capabilities: Capabilities | null | undefined;
  /** It isolates its payloads (its registration said an isolation other than `none`). */
  isolated?: boolean;
  /** It runs only payloads of these groups (a director instance's pilot); absent or null: any group. */
  groups?: readonly string[] | null;
}

/** What a payload needs of a runner. */
export interface Need {
  cores: CoreRequest;
  memoryMb: number | null;
  requirements?: Requirements | null;
  /** Its group requires isolation (`groups.G.requireIsolation`): only a pilot that isolates may run it. */
  requiresIsolation?: boolean;
  /** Its group: a runner restricted to other groups cannot run it. */
  group?: string;
}

/** A need a runner does not meet: a requirement (requirement-match.ts) or its cores or memory. */
type Lack = Pick<Unmet, 'wants' | 'has'> & { key: string };

/** How many reasons a "has all of it at once" line lists before it says how many more. */
const MAX_LISTED = 4;

/** What `runner` lacks to run `need` ever (not counting what is busy now). */
export function lacks(need: Need, runner: Runner): Lack[] {
  const out: Lack[] = unmetRequirements(need.requirements, runner.capabilities);
  if (!need.cores.wholeNode && minimumCores(need.cores, runner.cores) > runner.cores) {
    out.push({ key: 'cores', wants: `${need.cores.min} cores`, has: `${runner.cores} cores` });
  }
  if (need.memoryMb !== null && need.memoryMb > runner.memoryMb) {
    out.push({ key: 'memoryMb', wants: `${need.memoryMb} MB of memory`, has: `${runner.memoryMb} MB` });
  }
  if (need.requiresIsolation && runner.isolated !== true) out.push({ key: 'isolation', wants: 'payload isolation', has: 'isolation none' });
  if (need.group !== undefined && runner.groups && !runner.groups.includes(need.group)) {
    out.push({ key: 'group', wants: `group ${need.group}`, has: `groups ${runner.groups.join(', ')}` });
  }
  return out;
}

/**
 * Why nothing among `runners` can run `need`, or null when one of them can.
 * `noun` names them in the plural sentence ("live pilot": "no live pilot
 * has a GPU"). Pure.
 */
export function waitingReason(need: Need, runners: readonly Runner[], noun = 'live pilot'): string | null {
  if (runners.length === 0) return `no ${noun}`;
  const all = runners.map((r) => ({ runner: r, lacks: lacks(need, r) }));
  if (all.some((x) => x.lacks.length === 0)) return null;
  // a need that no runner meets is the reason, whatever else each lacks
  const keys = [...new Set(all.flatMap((x) => x.lacks.map((l) => l.key)))];
  const noneMeets = keys.filter((k) => all.every((x) => x.lacks.some((l) => l.key === k)));
  if (noneMeets.length > 0) {
    return noneMeets
      .map((k) => {
        const mine = all.map((x) => x.lacks.find((l) => l.key === k)!);
        const has = [...new Set(mine.map((l) => l.has))];
        return `no ${noun} has ${mine[0]!.wants} (${noun}s: ${has.join(', ')})`;
      })
      .join('; ');
  }
  const listed = all.slice(0, MAX_LISTED).map((x) => `${x.runner.label} lacks ${x.lacks.map((l) => l.wants).join(' and ')}`);
  const more = all.length > MAX_LISTED ? `; ${all.length - MAX_LISTED} more` : '';
  return `no ${noun} has all of it at once: ${listed.join('; ')}${more}`;
}
