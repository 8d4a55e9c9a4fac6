import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { connectLocalDynamoDb } from '#sandbox/dynamodb';
import { ROOT, bundleLambda, lambdaNode } from '../scripts/bundles.ts';
import { type Instance, compiledRunner, startApiDependencies, startInstance } from '../scripts/lambda-instance.ts';
import { LAMBDA_ENTRY_POINTS, LAMBDA_RUNTIME } from './bundling.ts';

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe("the Lambda runtime (LAMBDA_RUNTIME)", () => {
  it('is one AWS still lets a deployment create and update functions on', () => {
    // Fails on purpose on the runtime's deprecation date: move to the next Node.js runtime before then.
    const today = new Date().toISOString().slice(0, 10);
    expect(today < LAMBDA_RUNTIME.deprecation, `${LAMBDA_RUNTIME.identifier} is deprecated since ${LAMBDA_RUNTIME.deprecation}; AWS blocks updating its functions from ${LAMBDA_RUNTIME.blockFunctionUpdate}`).toBe(true);
  });

  it('is the Node the tests load the bundles on (scripts/install-tools.sh installs it)', async () => {
    const { stdout } = await promisify(execFile)(await lambdaNode(), ['--version']);
    expect(stdout.trim().split('.')[0]).toBe(`v${/^nodejs(\d+)\.x$/.exec(LAMBDA_RUNTIME.identifier)?.[1] ?? '?'}`);
  });

  it('runs the API bundle: the admin creates a tenant, which orders a cluster and reads it', async () => {
    const outdir = await mkdtemp(join(tmpdir(), 'kiln-lambda-runtime-'));
    cleanups.push(() => rm(outdir, { recursive: true, force: true }));
    const bundle = await bundleLambda('Api', LAMBDA_ENTRY_POINTS.Api, outdir);
    const dynamo = connectLocalDynamoDb(inject('dynamoDbEndpoint'));
    cleanups.push(() => dynamo.close());
    const dependencies = await startApiDependencies(dynamo, { KILN_LOG_LEVEL: 'silent' });
    cleanups.push(() => dependencies.close());
    const api: Instance = await startInstance(await compiledRunner(), join(ROOT, bundle.entryFile), dependencies.environment, { node: await lambdaNode() });
    cleanups.push(() => api.close());

    const tenant = await api.run(
      [{ method: 'POST', path: '/v1/tenants', headers: { authorization: `Bearer ${dependencies.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'runtime' }) }],
      201,
      true,
    );
    expect(tenant.unexpected).toBeUndefined();
    const { apiKey } = JSON.parse(tenant.bodies?.[0] ?? '{}') as { apiKey: string };
    const order = JSON.parse(await readFile(join(ROOT, 'packages/bootstrap/examples/full-order.json'), 'utf8')) as { encryption: { atRest: Record<string, unknown> } };
    // A key of Kiln's own making: the customer key in the example would be a KMS call this test has no stand-in for.
    const { key: _key, ...atRest } = order.encryption.atRest;
    const body = JSON.stringify({ ...order, name: 'on-lambda-node', encryption: { ...order.encryption, atRest: { ...atRest, keySource: 'generated' } } });
    const authorization = `Bearer ${apiKey}`;
    const created = await api.run([{ method: 'POST', path: '/v1/clusters', headers: { authorization, 'content-type': 'application/json', 'idempotency-key': 'runtime-1' }, body }], 202, true);
    expect(created.unexpected).toBeUndefined();
    const { id } = JSON.parse(created.bodies?.[0] ?? '{}') as { id: string };
    const read = await api.run([{ method: 'GET', path: `/v1/clusters/${id}`, headers: { authorization } }], 200, true);
    expect(read.unexpected).toBeUndefined();
    expect(JSON.parse(read.bodies?.[0] ?? '{}')).toMatchObject({ id, name: 'on-lambda-node', status: { phase: 'Pending' } });
    const anonymous = await api.run([{ method: 'GET', path: `/v1/clusters/${id}`, headers: {} }], 401, true);
    expect(anonymous.unexpected).toBeUndefined();
    expect(JSON.parse(anonymous.bodies?.[0] ?? '{}')).toMatchObject({ status: 401, code: 'unauthorized' });
  });
});
