import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Problem, offeredKubernetesSentence } from '#core';
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
