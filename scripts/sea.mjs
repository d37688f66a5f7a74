// The agent as a Node single executable application (SEA), its gzip copy and
// the agent manifest the server publishes (GET /v1/agent/manifest.json).
//
//   dist/vmpilot.cjs ──node --experimental-sea-config──▶ blob (code cache on)
//   copy of process.execPath, stripped ──postject──▶ dist/vmpilot-linux-x64
//   gzip -9 ──▶ dist/vmpilot-linux-x64.gz
//   sha256 + size + version of each ──▶ dist/agent-manifest.json
//
// The executable is rebuilt only when its recipe changes (bundle sha256, node
// version, postject version): the recipe key is kept in the manifest, so a
// test run that did not touch the agent does not pay for it again.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, createReadStream, createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';

/** The sentinel Node 20 looks for to know a SEA blob was injected. */
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

async function sha256File(file) {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

function hasStrip() {
  try {
    execFileSync('strip', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Build dist/vmpilot-linux-x64, its .gz copy and dist/agent-manifest.json
 * from dist/vmpilot.cjs. Returns the manifest.
 */
export async function buildSea({ root, version, quiet }) {
  const dist = path.join(root, 'dist');
  const bundle = path.join(dist, 'vmpilot.cjs');
  const exe = path.join(dist, 'vmpilot-linux-x64');
  const gz = `${exe}.gz`;
  const manifestFile = path.join(dist, 'agent-manifest.json');
  const postjectVersion = JSON.parse(readFileSync(path.join(root, 'node_modules/postject/package.json'), 'utf8')).version;
  const bundleSha = await sha256File(bundle);
  const recipe = createHash('sha256')
    .update(JSON.stringify({ bundleSha, node: process.version, arch: process.arch, postjectVersion, strip: hasStrip() }))
    .digest('hex');

  let old = null;
  try {
    old = JSON.parse(readFileSync(manifestFile, 'utf8'));
  } catch {
    // no manifest yet
  }
  const fresh = old?.recipe === recipe && old?.version === version && existsSync(exe) && existsSync(gz);
  if (!fresh) {
    if (process.platform !== 'linux' || process.arch !== 'x64') {
      throw new Error(`the agent executable is built for linux-x64 only, not ${process.platform}-${process.arch}`);
    }
    const work = mkdtempSync(path.join(tmpdir(), 'vmpilot-sea-'));
    try {
      const blob = path.join(work, 'sea-prep.blob');
      writeFileSync(
        path.join(work, 'sea-config.json'),
        JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }),
      );
      execFileSync(process.execPath, ['--experimental-sea-config', path.join(work, 'sea-config.json')], { stdio: quiet ? 'ignore' : 'inherit' });
      const tmpExe = path.join(work, 'vmpilot-linux-x64');
      copyFileSync(process.execPath, tmpExe);
      chmodSync(tmpExe, 0o755);
      if (hasStrip()) execFileSync('strip', ['--strip-all', tmpExe]);
      const { inject } = await import('postject');
      // postject prints "Can't find string offset" warnings on ELF: harmless, keep them out of the build log
      const saved = { log: console.log, warn: console.warn, error: console.error };
      console.log = console.warn = console.error = () => {};
      try {
        await inject(tmpExe, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: FUSE });
      } finally {
        Object.assign(console, saved);
      }
      // the executable must run before it is published
      const said = execFileSync(tmpExe, ['--version'], { encoding: 'utf8' }).trim();
      if (said !== version) throw new Error(`the built executable says version "${said}", expected "${version}"`);
      const tmpGz = path.join(work, 'vmpilot-linux-x64.gz');
      await pipeline(createReadStream(tmpExe), createGzip({ level: 9 }), createWriteStream(tmpGz));
      renameOrCopy(tmpExe, exe);
      renameOrCopy(tmpGz, gz);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }

  const describe = async (file, extra = {}) => ({
    name: path.basename(file),
    size: statSync(file).size,
    sha256: await sha256File(file),
    ...extra,
  });
  const exeInfo = await describe(exe);
  const manifest = {
    version,
    recipe,
    files: [
      await describe(bundle, { kind: 'bundle', needs: 'node>=20' }),
      { ...(await describe(gz, { kind: 'executable', platform: 'linux-x64', encoding: 'gzip' })), unpacked: { name: exeInfo.name, size: exeInfo.size, sha256: exeInfo.sha256 } },
      { ...exeInfo, kind: 'executable', platform: 'linux-x64' },
    ],
  };
  // temp + rename: a server reading it while another build runs never sees half a file
  writeFileSync(`${manifestFile}.tmp-${process.pid}`, `${JSON.stringify(manifest, null, 2)}\n`);
  renameSync(`${manifestFile}.tmp-${process.pid}`, manifestFile);
  if (!quiet) {
    const mb = (n) => `${(n / 1024 / 1024).toFixed(1)} MB`;
    console.log(`${fresh ? 'kept' : 'built'} dist/vmpilot-linux-x64 (${mb(exeInfo.size)}; gzip ${mb(manifest.files[1].size)})`);
  }
  return manifest;
}

function renameOrCopy(from, to) {
  try {
    renameSync(from, to);
  } catch {
    copyFileSync(from, to);
  }
}
