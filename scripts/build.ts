// `npm run build`: bundles every Lambda as SST deploys it (functions/bundling.ts), writes out/build/report.json
// with each bundle's size and packages, and exits 1 when a bundle holds a package it must not (the API with
// Pulumi, client-node, the add-on validators or the TypeScript compiler; any step with Pulumi), or when the Node of
// Lambda's runtime cannot load a bundle or would refuse one of its handlers.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FORBIDDEN_PACKAGES, LAMBDA_ENTRY_POINTS, LAMBDA_RUNTIME, type LambdaName } from '../functions/bundling.ts';
import { type BundleReport, LAMBDA_LOAD_ENVIRONMENT, ROOT, bundleLambda, exportedFunctions, lambdaNode } from './bundles.ts';

const OUT = join(ROOT, 'out/build');
const megabytes = (bytes: number) => `${(bytes / 1_000_000).toFixed(2)} MB`;

// One at a time: esbuild already uses every core, and the infrastructure bundle is large. Functions with the same
// code (the machine steps) are one bundle, checked against every one's forbidden packages.
const entries = Object.entries(LAMBDA_ENTRY_POINTS) as [LambdaName, string][];
const bundled = new Map<string, BundleReport>();
for (const entry of new Set(entries.map(([, path]) => path))) {
  const names = entries.filter(([, path]) => path === entry).map(([name]) => name);
  const forbidden = [...new Set(names.flatMap((name) => FORBIDDEN_PACKAGES[name]))];
  bundled.set(entry, await bundleLambda(names.join(', '), entry, join(OUT, names[0] ?? 'bundle'), forbidden));
}
const reports: BundleReport[] = entries.map(([name, entry]) => ({ ...(bundled.get(entry) as BundleReport), name }));
await mkdir(OUT, { recursive: true });
await writeFile(join(OUT, 'report.json'), `${JSON.stringify(reports, null, 2)}\n`);

console.log(`${'function'.padEnd(30)} ${'cold start'.padStart(11)} ${'all chunks'.padStart(11)}  largest packages`);
for (const report of reports) {
  const largest = Object.entries(report.packages)
    .sort(([, a], [, b]) => b - a)
    .slice(0, 4)
    .map(([name]) => name)
    .join(', ');
  console.log(`${report.name.padEnd(30)} ${megabytes(report.coldStartBytes).padStart(11)} ${megabytes(report.totalBytes).padStart(11)}  ${largest}`);
}
const violations = reports.flatMap((report) => report.violations.map((violation) => ({ name: report.name, ...violation })));
for (const violation of violations) {
  console.error(`\n${violation.name} must not contain ${violation.package}; it comes in through:\n  ${violation.chain.join('\n  -> ')}`);
}

// Each Lambda bundle loaded on the Node of Lambda's runtime, side by side, with a configuration as complete as
// production's (the Fargate task's bundle runs in its container image, on Pulumi's Node).
const node = await lambdaNode();
const loads = [...bundled].filter(([entry]) => entry !== LAMBDA_ENTRY_POINTS.Infrastructure);
const refusals = await Promise.all(
  loads.map(async ([entry, report]): Promise<string[]> => {
    try {
      const exported = await exportedFunctions(node, join(ROOT, report.entryFile), LAMBDA_LOAD_ENVIRONMENT);
      if (exported.length === 0) return [`${entry} exports no handler`];
      return exported.filter(({ parameters }) => parameters > 2).map((handler) => `${entry}: ${handler.name} takes a callback (${String(handler.parameters)} parameters), which ${LAMBDA_RUNTIME.identifier} refuses`);
    } catch (error) {
      return [`${entry} does not load on ${LAMBDA_RUNTIME.identifier}'s Node: ${error instanceof Error ? error.message : String(error)}`];
    }
  }),
);
const refused = refusals.flat();
for (const problem of refused) console.error(`\n${problem}`);
console.log(`\nLoaded ${String(refusals.filter((problems) => problems.length === 0).length)} of ${String(loads.length)} Lambda bundles on ${LAMBDA_RUNTIME.identifier}'s Node (${node}).`);
console.log(`Wrote ${join('out/build', 'report.json')}.`);
if (violations.length > 0 || refused.length > 0) process.exitCode = 1;
