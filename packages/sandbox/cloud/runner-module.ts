import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

const SOURCE = fileURLToPath(new URL('./runner.ts', import.meta.url));
/** Inside node_modules, so the compiled file resolves Pulumi and zod from the project's own dependencies. */
const CACHE = fileURLToPath(new URL('../../../node_modules/.cache/kiln-sandbox/', import.meta.url));

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
  }
  compiled = file;
  return file;
}
