/**
 * The bootstrap as the pilot sees it: run the steps from the spec file; on
 * success hand back their environment (the pilot adds it to the payloads'
 * base environment, payload/base-env.ts) and go on; on failure ask for a halt with shutdown code 500 naming the step and
 * why ("bootstrap step install-software failed: … has sha256 …, expected …").
 */
import { ShutdownCode } from '../../protocol/index.js';
import type { HaltRequest } from '../monitor/lifecycle.js';
import { bootstrapFromFile, type BootstrapDeps } from './run.js';

/** How the bootstrap ended: the environment it adds to every payload's, or the halt to make. */
export type BootstrapEnd = { env: Readonly<Record<string, string>> } | { halt: HaltRequest };

/** Run the bootstrap of `file`: its environment to go on serving with, or the halt to make. */
export async function bootstrapHalt(file: string, deps: BootstrapDeps): Promise<BootstrapEnd> {
  const outcome = await bootstrapFromFile(file, deps);
  if (!outcome.ok) return { halt: { code: ShutdownCode.ENVIRONMENT, reason: `bootstrap step ${outcome.step} failed: ${outcome.reason}`, fatal: true } };
  return { env: outcome.env };
}
