import { execFile } from 'node:child_process';
import { access, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { type Metafile, type Plugin, build } from 'esbuild';
import { FORBIDDEN_PACKAGES, LAMBDA_NODEJS, type LambdaName, SST_ESBUILD_OPTIONS } from '../functions/bundling.ts';
import { WORKFLOW_NAMES, type WorkflowName } from '../workflows/definitions.ts';

export const ROOT = join(import.meta.dirname, '..');

/** The Node of Lambda's runtime (LAMBDA_RUNTIME in functions/bundling.ts), where scripts/install-tools.sh puts it. */
export const LAMBDA_NODE = join(ROOT, '.tools/lambda-node/bin/node');

/** Lambda's Node, or an error that says how to get it. */
export async function lambdaNode(): Promise<string> {
  try {
    await access(LAMBDA_NODE);
  } catch {
    throw new Error(`${LAMBDA_NODE} is missing: \`bash scripts/install-tools.sh\` installs the Node of Lambda's runtime there`);
  }
  return LAMBDA_NODE;
}

/** The variables that hand a function each workflow's state machine (KILN_PROVISION_STATE_MACHINE_ARN, ...). */
export function stateMachineVariables(arnOf: (name: WorkflowName) => string): Record<string, string> {
  return Object.fromEntries(WORKFLOW_NAMES.map((name) => [`KILN_${name.toUpperCase().replaceAll('-', '_')}_STATE_MACHINE_ARN`, arnOf(name)]));
}

/** The configuration the Lambda functions read at load, as complete as production's; nothing is called with it. */
export const LAMBDA_LOAD_ENVIRONMENT: Record<string, string> = {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'load',
  AWS_SECRET_ACCESS_KEY: 'load',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  KILN_TABLE_NAME: 'kiln-load',
  ...stateMachineVariables((name) => `arn:aws:states:us-east-1:000000000000:stateMachine:kiln-${name}`),
  KILN_SEALING_KEY_ID: 'alias/kiln-load',
  KILN_ACCOUNT_ID: '000000000000',
  KILN_WEBHOOK_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/000000000000/kiln-webhook-deliveries',
};

/** A function a bundle exports, as a Node loading it sees it. */
export interface ExportedFunction {
  name: string;
  /** The parameters it declares: Lambda's Node.js 24 runtime refuses a handler that takes a callback (a third). */
  parameters: number;
}

/** Loads a bundle on the Node given, as Lambda does at a cold start, and lists the functions it exports. */
export async function exportedFunctions(node: string, file: string, environment: Record<string, string>): Promise<ExportedFunction[]> {
  const script = [
    `const loaded = await import(${JSON.stringify(pathToFileURL(file).href)});`,
    "const found = Object.entries(loaded).filter(([, value]) => typeof value === 'function').map(([name, value]) => ({ name, parameters: value.length }));",
    "process.stdout.write('\\n' + JSON.stringify(found) + '\\n', () => process.exit(0));",
  ].join('\n');
  try {
    const { stdout } = await promisify(execFile)(node, ['--input-type=module', '--eval', script], { env: { PATH: process.env.PATH, ...environment }, timeout: 60_000 });
    return JSON.parse(stdout.trim().split('\n').at(-1) ?? '[]') as ExportedFunction[];
  } catch (error) {
    // The error Node printed (its name and message), not the whole minified line it points at.
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(/^\w*Error\b.*$/m.exec(stderr)?.[0] ?? (error instanceof Error ? error.message : String(error)));
  }
}

export interface BundleReport {
  name: string;
  /** The file Lambda loads at cold start (the entry chunk and the chunks it imports statically). */
  entryFile: string;
  /** Bytes loaded at cold start: the entry and every chunk it imports statically. */
  coldStartBytes: number;
  /** Bytes of every chunk, the lazily loaded ones included. */
  totalBytes: number;
  /** npm packages in the bundle, with the bytes each contributes to it. */
  packages: Record<string, number>;
  /** Forbidden packages found, each with the import chain that brought it in. */
  violations: { package: string; chain: string[] }[];
}

/** `node_modules/@scope/name/lib/x.js` -> `@scope/name`. */
export function packageOf(input: string): string | undefined {
  const at = input.lastIndexOf('node_modules/');
  if (at < 0) return undefined;
  const parts = input.slice(at + 'node_modules/'.length).split('/');
  return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1] ?? ''}` : parts[0];
}

/** The shortest import chain from the entry to a file, for a readable violation. */
function chainTo(metafile: Metafile, entry: string, target: string): string[] {
  const previous = new Map<string, string | undefined>([[entry, undefined]]);
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.shift() ?? '';
    if (file === target) break;
    for (const imported of metafile.inputs[file]?.imports ?? []) {
      if (!previous.has(imported.path)) {
        previous.set(imported.path, file);
        queue.push(imported.path);
      }
    }
  }
  const chain: string[] = [];
  for (let at: string | undefined = target; at !== undefined; at = previous.get(at)) chain.unshift(at);
  return chain.filter((file, index) => index === chain.length - 1 || !file.includes('node_modules/'));
}

/** The input files whose code ended up in some output: esbuild also lists files it parsed and then dropped. */
export function bundledInputs(metafile: Metafile): Map<string, number> {
  const bundled = new Map<string, number>();
  for (const output of Object.values(metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      if (bytesInOutput > 0) bundled.set(input, (bundled.get(input) ?? 0) + bytesInOutput);
    }
  }
  return bundled;
}

/** Which forbidden packages a bundle holds; `forbidden` entries ending in `/` match a scope or a prefix. */
export function forbiddenIn(metafile: Metafile, entry: string, forbidden: readonly string[]): BundleReport['violations'] {
  const found = new Map<string, string>();
  for (const input of bundledInputs(metafile).keys()) {
    const name = packageOf(input);
    if (name === undefined) continue;
    const rule = forbidden.find((pattern) => (pattern.endsWith('/') ? name.startsWith(pattern) : name === pattern));
    if (rule !== undefined && !found.has(name)) found.set(name, input);
  }
  return [...found].map(([name, input]) => ({ package: name, chain: chainTo(metafile, entry, input) }));
}

/** Bundles one entry point exactly as SST would, into `outdir`, and reports what it holds. */
export async function bundleLambda(name: string, entry: string, outdir: string, forbidden: readonly string[] = FORBIDDEN_PACKAGES[name as LambdaName]): Promise<BundleReport> {
  await rm(outdir, { recursive: true, force: true });
  const { esbuild: extra, splitting, minify } = LAMBDA_NODEJS;
  // The plugins SST loads from the same file (LAMBDA_NODEJS.plugins, relative to the repository root).
  const { default: plugins } = (await import(pathToFileURL(join(ROOT, LAMBDA_NODEJS.plugins)).href)) as { default: Plugin[] };
  const result = await build({
    ...SST_ESBUILD_OPTIONS,
    mainFields: [...SST_ESBUILD_OPTIONS.mainFields],
    external: [...SST_ESBUILD_OPTIONS.external],
    entryPoints: [entry],
    outdir,
    absWorkingDir: ROOT,
    splitting,
    minify,
    // LAMBDA_NODEJS.sourcemap: SST writes linked source maps.
    sourcemap: 'linked',
    target: extra.target,
    metafile: true,
    logLevel: 'error',
    plugins,
  });
  const metafile = result.metafile;
  const outputs = Object.entries(metafile.outputs).filter(([file]) => file.endsWith('.mjs'));
  // Chunks loaded by a dynamic import() name their target as entryPoint too; the function's own entry is the one named here.
  const [entryFile = ''] = outputs.find(([, output]) => output.entryPoint === entry) ?? [];
  const coldStart = new Set<string>();
  const visit = (file: string) => {
    if (coldStart.has(file)) return;
    coldStart.add(file);
    for (const imported of metafile.outputs[file]?.imports ?? []) if (imported.kind === 'import-statement' && !imported.external) visit(imported.path);
  };
  visit(entryFile);
  const packages: Record<string, number> = {};
  for (const [input, bytes] of bundledInputs(metafile)) {
    const pkg = packageOf(input);
    if (pkg !== undefined) packages[pkg] = (packages[pkg] ?? 0) + bytes;
  }
  return {
    name,
    entryFile,
    coldStartBytes: [...coldStart].reduce((sum, file) => sum + (metafile.outputs[file]?.bytes ?? 0), 0),
    totalBytes: outputs.reduce((sum, [, output]) => sum + output.bytes, 0),
    packages,
    violations: forbiddenIn(metafile, entry, forbidden),
  };
}
