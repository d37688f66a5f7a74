#!/usr/bin/env node
// Build the agent (one file, no native modules, nothing read from node_modules
// at run time) and the server entry. Usage: node scripts/build.mjs [--quiet]
import { build } from 'esbuild';
import { chmod, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));
const quiet = process.argv.includes('--quiet');

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minify: true,
  keepNames: true,
  legalComments: 'none',
  logLevel: quiet ? 'error' : 'warning',
  banner: { js: '#!/usr/bin/env node' },
  define: { __VMPILOT_VERSION__: JSON.stringify(pkg.version) },
  // import.meta.url has no meaning in a CommonJS bundle; give it this file's URL.
  inject: [path.join(root, 'scripts/import-meta-url.js')],
  absWorkingDir: root,
};

// `import text from './file?raw'` gives the file's text (the server's dashboard assets), as vite does in tests.
const rawText = {
  name: 'raw-text',
  setup(b) {
    b.onResolve({ filter: /\?raw$/ }, (a) => ({ path: path.resolve(a.resolveDir, a.path.slice(0, -'?raw'.length)), namespace: 'raw-text' }));
    b.onLoad({ filter: /.*/, namespace: 'raw-text' }, async (a) => ({ contents: await readFile(a.path, 'utf8'), loader: 'text' }));
  },
};

const targets = [
  { entryPoints: ['src/cli/vmpilot.ts'], outfile: 'dist/vmpilot.cjs' },
  // The server may use native modules: better-sqlite3 stays in node_modules; pg-native is node-postgres's
  // optional native binding, which the server never loads (pg itself is bundled).
  { entryPoints: ['src/cli/vmpilot-server.ts'], outfile: 'dist/vmpilot-server.cjs', external: ['better-sqlite3', 'pg-native'], plugins: [rawText] },
];

for (const target of targets) {
  await build({ ...common, ...target, define: { ...common.define, 'import.meta.url': '__import_meta_url' } });
  await chmod(path.join(root, target.outfile), 0o755);
  if (!quiet) console.log(`built ${target.outfile}`);
}

// The agent as a single executable (no Node.js needed on the node), its gzip
// copy and dist/agent-manifest.json (sha256, size, version) for the server.
const { buildSea } = await import('./sea.mjs');
await buildSea({ root, version: pkg.version, quiet });
