import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Problem, offeredKubernetesSentence, sha256 } from '#core';
import { expectProblem } from '../../../test/support/api.ts';
import { type ApiHarness, startApiHarness } from '../../../test/support/api-harness.ts';

let api: ApiHarness;
beforeAll(async () => {
  api = await startApiHarness();
});
afterAll(async () => {
  await api.close();
});

const order = { name: 'demo', region: 'eu-central-1', nodePools: [{ name: 'default', size: 1 }] };

describe('POST /v1/clusters with a Kubernetes version', () => {
  it('refuses a minor past its end of life with 422 naming what Kiln offers, and creates nothing', async () => {
    const { apiKey } = await api.newTenant();
    const response = await api.call<Problem>('POST', '/v1/clusters', { token: apiKey, body: { ...order, kubernetesVersion: '1.33' } });
    expectProblem(response, 422, 'unprocessable');
    expect(response.body.detail).toContain('Kubernetes 1.33 reached its end of life on 2026-06-28');
    expect(response.body.detail).toContain(offeredKubernetesSentence(new Date()));
    expect(response.body.errors).toEqual([expect.objectContaining({ pointer: '/kubernetesVersion' })]);
    const clusters = await api.call<{ items: unknown[] }>('GET', '/v1/clusters', { token: apiKey });
    expect(clusters.body.items).toEqual([]);
  });

  it('refuses a maintained minor the pinned add-ons do not support, saying which add-ons', async () => {
    const { apiKey } = await api.newTenant();
    const response = await api.call<Problem>('POST', '/v1/clusters', { token: apiKey, body: { ...order, kubernetesVersion: '1.37' } });
    expectProblem(response, 422, 'unprocessable');
    expect(response.body.detail).toMatch(/Kubernetes 1\.37 is not supported by .*Cilium 1\.20\.2 \(1\.33 to 1\.36\)/);
  });

  it('answers a version that is not a minor with 400 at its pointer', async () => {
    const { apiKey } = await api.newTenant();
    const response = await api.call<Problem>('POST', '/v1/clusters', { token: apiKey, body: { ...order, kubernetesVersion: 'latest' } });
    expectProblem(response, 400, 'validation_failed');
    expect(response.body.errors).toEqual([{ pointer: '/kubernetesVersion', detail: 'must be a Kubernetes minor version such as 1.35' }]);
  });
});

describe('POST /v1/clusters reaching into an AWS account', () => {
  const refusal = async (body: Record<string, unknown>) => {
    const { apiKey } = await api.newTenant();
    const response = await api.call<Problem>('POST', '/v1/clusters', { token: apiKey, body: { ...order, ...body } });
    expectProblem(response, 422, 'unprocessable');
    const clusters = await api.call<{ items: unknown[] }>('GET', '/v1/clusters', { token: apiKey });
    expect(clusters.body.items).toEqual([]);
    return response.body;
  };

  it("refuses an external ID with 422: Kiln issues the tenant's, and the problem says where to read it", async () => {
    const problem = await refusal({ account: { roleArn: 'arn:aws:iam::333344445555:role/kiln-provisioner', externalId: 'chosen-by-the-tenant' } });
    expect(problem.errors).toEqual([{ pointer: '/account/externalId', detail: expect.stringContaining('GET /v1/account-trust') as unknown }]);
  });

  it("refuses a role in Kiln's own account with 422 naming account.roleArn", async () => {
    const problem = await refusal({ account: { roleArn: 'arn:aws:iam::000000000000:role/kiln-provisioner' } });
    expect(problem.errors).toEqual([expect.objectContaining({ pointer: '/account/roleArn' })]);
  });

  it('refuses a KMS key of another account than the one the cluster is built in with 422 naming it', async () => {
    const kmsKeyArn = 'arn:aws:kms:eu-central-1:999988887777:key/0d7c6b2a-1f2e-4c3d-9a8b-7c6d5e4f3a2b';
    const atRest = { provider: 'aescbc', keySource: 'kms', kmsKeyArn };
    // aescbc with a KMS key is refused for its own reason too; the account rule names the key either way.
    const inKilns = await refusal({ encryption: { atRest } });
    expect(inKilns.errors).toContainEqual(expect.objectContaining({ pointer: '/encryption/atRest/kmsKeyArn' }));
    const inTenants = await refusal({ encryption: { atRest }, account: { roleArn: 'arn:aws:iam::333344445555:role/kiln-provisioner' } });
    expect(inTenants.errors).toContainEqual(expect.objectContaining({ pointer: '/encryption/atRest/kmsKeyArn' }));
  });
});

describe("POST /v1/clusters in the tenant's account", () => {
  it("records the tenant's external ID, the one Kiln issued, with the cluster", async () => {
    const { apiKey } = await api.newTenant();
    const trust = await api.call<{ externalId: string }>('GET', '/v1/account-trust', { token: apiKey });
    const roleArn = 'arn:aws:iam::333344445555:role/kiln-provisioner';
    const created = await api.call<{ id: string; account?: { roleArn: string; externalId?: string } }>('POST', '/v1/clusters', { token: apiKey, body: { ...order, account: { roleArn } } });
    expect(created.status).toBe(202);
    expect(created.body.account).toEqual({ roleArn, externalId: trust.body.externalId });
    const tenant = await api.services.store.findTenantByApiKeyHash(sha256(apiKey));
    const stored = await api.services.store.getCluster(tenant?.id ?? '', created.body.id);
    expect(stored?.spec.account).toEqual({ roleArn, externalId: trust.body.externalId });
  });
});
