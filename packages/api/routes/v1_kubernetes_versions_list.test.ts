import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KubernetesVersionList, offeredKubernetesReleases } from '#core';
import { expectProblem } from '../../../test/support/api.ts';
import { type ApiHarness, startApiHarness } from '../../../test/support/api-harness.ts';

let api: ApiHarness;
beforeAll(async () => {
  api = await startApiHarness();
});
afterAll(async () => {
  await api.close();
});

describe('GET /v1/kubernetes-versions', () => {
  it('lists the minors a new cluster may run today, each with its patch and an end of life still ahead, one the default', async () => {
    const { apiKey } = await api.newTenant();
    const response = await api.call<KubernetesVersionList>('GET', '/v1/kubernetes-versions', { token: apiKey });
    expect(response.status).toBe(200);
    const today = new Date().toISOString().slice(0, 10);
    expect(response.body.items.map((item) => item.version)).toEqual(offeredKubernetesReleases(new Date()).map((release) => release.minor));
    expect(response.body.items.length).toBeGreaterThan(0);
    for (const item of response.body.items) {
      expect(item.patchRelease).toMatch(new RegExp(`^v${item.version.replace('.', '\\.')}\\.\\d+$`));
      expect(item.endOfLifeDate > today).toBe(true);
    }
    expect(response.body.items.filter((item) => item.default)).toHaveLength(1);
    expect(response.headers.get('cache-control')).toBe('private, max-age=300');
  });

  it('answers the admin token too: it holds no tenant data', async () => {
    const response = await api.call<KubernetesVersionList>('GET', '/v1/kubernetes-versions', { token: api.adminToken });
    expect(response.status).toBe(200);
    expect(response.body.items.length).toBeGreaterThan(0);
  });

  it('needs a valid bearer token', async () => {
    expectProblem(await api.call('GET', '/v1/kubernetes-versions'), 401, 'unauthorized');
    expectProblem(await api.call('GET', '/v1/kubernetes-versions', { token: 'kiln_not-a-key' }), 401, 'unauthorized');
  });
});
