/**
 * The bootstrap as the pilot sees it: run the steps from the spec file; on
 * success add their environment to the payloads' base environment and go
 * on; on failure ask for a halt with shutdown code 500 naming the step and
 * why ("bootstrap step install-software failed: … has sha256 …, expected …").
 */
import { ShutdownCode } from '../../protocol/index.js';
import type { HaltRequest } from '../monitor/lifecycle.js';
import { bootstrapFromFile, type BootstrapDeps } from './run.js';

/** Run the bootstrap of `file`; null to go on serving, or the halt to make. */
export async function bootstrapHalt(file: string, deps: BootstrapDeps, payloadEnv: Record<string, string>): Promise<HaltRequest | null> {
  const outcome = await bootstrapFromFile(file, deps);
  if (!outcome.ok) return { code: ShutdownCode.ENVIRONMENT, reason: `bootstrap step ${outcome.step} failed: ${outcome.reason}`, fatal: true };
  Object.assign(payloadEnv, outcome.env);
  return null;
}
