import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Problem, newId } from '#core';
import { expectProblem } from '../../../test/support/api.ts';
import { type ApiHarness, startApiHarness } from '../../../test/support/api-harness.ts';

let api: ApiHarness;
beforeAll(async () => {
  api = await startApiHarness();
});
afterAll(async () => {
  await api.close();
});

describe('/v1/tenants/{id}/suspension', () => {
  it("suspends a tenant: its keys get 401 saying so, another tenant's keep working; resuming lets them in again", async () => {
    const tenant = await api.newTenant();
    const bystander = await api.newTenant();
    const suspended = await api.call<{ id: string; suspendedAt?: string }>('PUT', `/v1/tenants/${tenant.id}/suspension`, { token: api.adminToken });
    expect(suspended.status, suspended.text).toBe(200);
    expect(suspended.body).toMatchObject({ id: tenant.id, suspendedAt: expect.any(String) as unknown });
    // Suspending again changes nothing.
    expect((await api.call<{ suspendedAt?: string }>('PUT', `/v1/tenants/${tenant.id}/suspension`, { token: api.adminToken })).body.suspendedAt).toBe(suspended.body.suspendedAt);

    const refused = await api.call<Problem>('GET', '/v1/clusters', { token: tenant.apiKey });
    expectProblem(refused, 401, 'unauthorized');
    expect(refused.body.detail).toMatch(/tenant is suspended/);
    expect((await api.call('GET', '/v1/clusters', { token: bystander.apiKey })).status).toBe(200);

    const resumed = await api.call<{ id: string; suspendedAt?: string }>('DELETE', `/v1/tenants/${tenant.id}/suspension`, { token: api.adminToken });
    expect(resumed.status).toBe(200);
    expect(resumed.body.suspendedAt).toBeUndefined();
    expect((await api.call('GET', '/v1/clusters', { token: tenant.apiKey })).status).toBe(200);
  });

  it('answers a tenant that does not exist with 404, and a tenant key with 403', async () => {
    const tenant = await api.newTenant();
    for (const method of ['PUT', 'DELETE']) {
      expectProblem(await api.call(method, `/v1/tenants/${newId('tenant')}/suspension`, { token: api.adminToken }), 404, 'not_found');
      expectProblem(await api.call(method, `/v1/tenants/${tenant.id}/suspension`, { token: tenant.apiKey }), 403, 'forbidden');
    }
    expect((await api.call('GET', '/v1/clusters', { token: tenant.apiKey })).status).toBe(200);
  });
});
