import type { BatchScriptOptions } from '../../../../src/server/delivery/batch-script.js';
import { BATCH_DEFAULTS } from '../../../../src/server/delivery/batch-script.js';
import type { AgentRef } from '../../../../src/server/delivery/shell.js';
import type { UserDataOptions } from '../../../../src/server/delivery/user-data.js';
import { USER_DATA_DEFAULTS } from '../../../../src/server/delivery/user-data.js';

/** The placeholder values of the templates in bootstrap/ and cloud-init/. */
export const TEMPLATE_SERVER = 'https://pilots.example.org:8080';
export const TEMPLATE_TOKEN = 'REPLACE-WITH-THE-PILOT-REGISTRATION-TOKEN';
export const TEMPLATE_AGENT: AgentRef = {
  file: 'vmpilot-linux-x64.gz',
  sha256: '1'.repeat(64),
  runSha256: '2'.repeat(64),
  kind: 'executable',
  size: 32782431,
};

export const batchOptions = (o: Partial<BatchScriptOptions> = {}): BatchScriptOptions => ({
  system: 'slurm',
  server: TEMPLATE_SERVER,
  token: TEMPLATE_TOKEN,
  agent: TEMPLATE_AGENT,
  ...BATCH_DEFAULTS,
  ...o,
});

export const userDataOptions = (o: Partial<UserDataOptions> = {}): UserDataOptions => ({
  server: TEMPLATE_SERVER,
  token: TEMPLATE_TOKEN,
  agent: TEMPLATE_AGENT,
  cores: null,
  lifetimeSec: null,
  packages: [],
  sshKeys: [],
  ...USER_DATA_DEFAULTS,
  ...o,
});

/** The version stamp differs between source (0.0.0-dev) and the build: compare without it. */
export const unstamped = (text: string) => text.replace(/(batch-script|user-data) \S+\.$/m, '$1 VERSION.');
