import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FORBIDDEN_PACKAGES, LAMBDA_ENTRY_POINTS } from '../functions/bundling.ts';
import { ROOT, bundleLambda, exportedFunctions, lambdaNode, packageOf } from './bundles.ts';

const cleanups: string[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((path) => rm(path, { recursive: true, force: true })));
});

async function outdir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-bundle-test-'));
  cleanups.push(dir);
  return dir;
}

describe('the Lambda bundles', () => {
  it('keep the API free of Pulumi, the Kubernetes client, the add-on validators and the compiler', async () => {
    const report = await bundleLambda('Api', LAMBDA_ENTRY_POINTS.Api, await outdir());
    expect(report.violations).toEqual([]);
    expect(Object.keys(report.packages)).toEqual(expect.arrayContaining(['hono', 'zod', '@aws-sdk/client-dynamodb']));
    expect(report.coldStartBytes).toBeLessThan(report.totalBytes);
  });

  it('name the forbidden package and the import chain that brought it in when someone imports #infra under the API', async () => {
    // A file in the repository, so '#infra' resolves as it would for a real route.
    const entry = `functions/.bundle-check-${process.pid}.ts`;
    cleanups.push(join(ROOT, entry));
    await writeFile(join(ROOT, entry), "export { app } from './api.ts';\nexport { clusterProgram } from '#infra';\n");
    const report = await bundleLambda('Api', entry, await outdir(), FORBIDDEN_PACKAGES.Api);
    const pulumi = report.violations.find((violation) => violation.package === '@pulumi/aws');
    expect(pulumi?.chain.slice(0, 3)).toEqual([entry, 'packages/infra/index.ts', 'packages/infra/cluster-program.ts']);
    expect(report.violations.map((violation) => violation.package)).toEqual(expect.arrayContaining(['@pulumi/pulumi', 'typescript']));
  });

  it('read package names the way npm lays them out', () => {
    expect(packageOf('node_modules/@pulumi/aws/ec2/vpc.js')).toBe('@pulumi/aws');
    expect(packageOf('node_modules/undici/lib/index.js')).toBe('undici');
    expect(packageOf('node_modules/@kubernetes/client-node/node_modules/undici/index.js')).toBe('undici');
    expect(packageOf('packages/api/app.ts')).toBeUndefined();
  });

  it("are loaded on the Node of Lambda's runtime, which names a handler taking a callback and an error thrown at load", async () => {
    const node = await lambdaNode();
    const dir = await outdir();
    await writeFile(join(dir, 'callback.mjs'), 'export const handler = (event, context, callback) => callback(null, event);\nexport const step = async (event) => event;\nexport const version = 1;\n');
    expect(await exportedFunctions(node, join(dir, 'callback.mjs'), {})).toEqual([
      { name: 'handler', parameters: 3 },
      { name: 'step', parameters: 1 },
    ]);
    await writeFile(join(dir, 'misconfigured.mjs'), "if (process.env.KILN_TABLE_NAME === undefined) throw new Error('KILN_TABLE_NAME is required');\nexport const handler = async () => 'ok';\n");
    await expect(exportedFunctions(node, join(dir, 'misconfigured.mjs'), {})).rejects.toThrow(/^Error: KILN_TABLE_NAME is required$/);
    expect(await exportedFunctions(node, join(dir, 'misconfigured.mjs'), { KILN_TABLE_NAME: 'kiln' })).toEqual([{ name: 'handler', parameters: 0 }]);
  });
});
