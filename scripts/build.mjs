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

// The agent's logger (pino → sonic-boom) loads node's `assert` for one check,
// and pino asks `worker_threads` only whether it runs on the main thread (it
// does: the agent never uses pino transports). Node's own modules cost about
// 1.5 MB of RSS for `assert` alone; in the agent these two come from small
// stand-ins. Other importers (tar, for bootstrap) keep the real ones.
const leanLogger = {
  name: 'lean-logger',
  setup(b) {
    const fromLogger = (importer) => /node_modules\/(sonic-boom|thread-stream|pino)\//.test(importer);
    b.onResolve({ filter: /^(node:)?(assert|worker_threads)$/ }, (a) =>
      fromLogger(a.importer) ? { path: a.path.replace(/^node:/, ''), namespace: 'lean-logger' } : undefined,
    );
    b.onLoad({ filter: /^assert$/, namespace: 'lean-logger' }, () => ({
      contents: 'module.exports = function assert(ok, message) { if (!ok) throw new Error(message || "assertion failed"); };',
      loader: 'js',
    }));
    b.onLoad({ filter: /^worker_threads$/, namespace: 'lean-logger' }, () => ({
      contents: 'module.exports = { isMainThread: true, Worker: function Worker() { throw new Error("pino transports are not available in the agent"); } };',
      loader: 'js',
    }));
  },
};

const targets = [
  { entryPoints: ['src/cli/vmpilot.ts'], outfile: 'dist/vmpilot.cjs', plugins: [leanLogger] },
  // The server may use native modules: better-sqlite3 stays in node_modules.
  { entryPoints: ['src/cli/vmpilot-server.ts'], outfile: 'dist/vmpilot-server.cjs', external: ['better-sqlite3'], plugins: [rawText] },
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
