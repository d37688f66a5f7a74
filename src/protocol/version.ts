declare const __VMPILOT_VERSION__: string | undefined;

/** The vmpilot version, set by the build from package.json ("0.0.0-dev" when run from source). */
export const VERSION: string = typeof __VMPILOT_VERSION__ === 'string' ? __VMPILOT_VERSION__ : '0.0.0-dev';
