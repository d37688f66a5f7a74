/** Protocol version 1: the only code the agent and the server share. */
export * from './common-messages.js';
export * from './pilot-messages.js';
export * from './admin-messages.js';
export * from './director-messages.js';
export * from './paths.js';
export * from './shutdown-codes.js';
export * from './cores.js';
export * from './requirements.js';
export * from './requirement-match.js';
export * from './version.js';
export * from './relay.js';
export { LIMITS } from './schema-parts.js';
