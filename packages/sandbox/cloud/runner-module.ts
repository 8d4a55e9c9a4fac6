import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

const SOURCE = fileURLToPath(new URL('./runner.ts', import.meta.url));
/** Inside node_modules, so the compiled file resolves Pulumi and zod from the project's own dependencies. */
const CACHE = fileURLToPath(new URL('../../../node_modules/.cache/kiln-sandbox/', import.meta.url));

/** A compiled runner of other code, older than this, is removed: no process that could still fork it runs so long. */
const STALE_MS = 24 * 60 * 60 * 1000;

let compiled: string | undefined;

/**
 * The runner compiled to one JavaScript module, with the npm packages left as imports. Forked under tsx, each runner
 * spent about 1.3 of its 3 CPU-seconds of loading on compiling TypeScript (its own and the packages it imports through
 * `#infra`), and every cluster program run forks a fresh runner. Compiled once per process, in about 20 ms; the file
 * is named by its content, so processes that compile at the same time write the same bytes and never a half file.
 */
export function runnerModule(): string {
  if (compiled !== undefined) return compiled;
  const { outputFiles } = buildSync({
    entryPoints: [SOURCE],
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    write: false,
    logLevel: 'silent',
  });
  const code = outputFiles[0]?.contents;
  if (code === undefined) throw new Error(`esbuild wrote nothing for ${SOURCE}`);
  const file = join(CACHE, `runner-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`);
  if (!existsSync(file)) {
    mkdirSync(CACHE, { recursive: true });
    const partial = `${file}.${process.pid}.partial`;
    writeFileSync(partial, code);
    renameSync(partial, file);
    removeStaleRunners(CACHE, file);
  }
  compiled = file;
  return file;
}

/** Each change to the runner's code compiles a new file (about 46 KB); the old ones would pile up until `npm ci`. */
export function removeStaleRunners(directory: string, current: string, now = Date.now()): void {
  for (const name of readdirSync(directory)) {
    const path = join(directory, name);
    if (path === current || !name.startsWith('runner-')) continue;
    try {
      if (now - statSync(path).mtimeMs > STALE_MS) rmSync(path, { force: true });
    } catch {
      // Removed by another process meanwhile.
    }
  }
}
