import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Problem } from '#core';
import { expectProblem } from '../../test/support/api.ts';
import { type ApiHarness, startApiHarness } from '../../test/support/api-harness.ts';
import { RequestAdmission } from '#services';
import { newApp } from './app.ts';

let api: ApiHarness;
beforeAll(async () => {
  api = await startApiHarness();
});
afterAll(async () => {
  await api.close();
});

const order = (name: string, size: number) => ({ name, region: 'eu-central-1', nodePools: [{ name: 'default', size }] });

describe('per-tenant rate limiting', () => {
  it('answers past the burst with 429, Retry-After and the RateLimit fields, and the refused request changes nothing', async () => {
    const app = newApp({ ...api.services, rateLimit: { perSecond: 0.1, burst: 3 } });
    const { id: tenantId, apiKey } = await api.newTenant();
    const send = (method: string, path: string, body?: unknown) =>
      app.request(path, { method, headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });

    const first = await send('GET', '/v1/clusters');
    expect(first.status).toBe(200);
    expect(first.headers.get('ratelimit-policy')).toBe('"tenant";q=3;w=30');
    expect(first.headers.get('ratelimit')).toBe('"tenant";r=2;t=10');
    await send('GET', '/v1/clusters');
    expect((await send('GET', '/v1/clusters')).headers.get('ratelimit')).toMatch(/^"tenant";r=0;t=(29|30)$/);

    const refused = await send('POST', '/v1/webhook-endpoints', { url: 'https://hooks.example.com/kiln' });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toBe('application/problem+json');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(9);
    expect(refused.headers.get('ratelimit')).toMatch(/^"tenant";r=0;t=\d+$/);
    expect(refused.headers.get('x-request-id')).not.toBe(null);
    const problem = (await refused.json()) as Problem;
    expect(problem).toMatchObject({ status: 429, code: 'rate_limited' });
    expect(problem.detail).toContain('0.1 a second on average and 3 at once');

    // The endpoint was not created (read in the store: the tenant's bucket is still empty).
    expect(await api.services.store.listWebhookEndpoints(tenantId)).toEqual([]);
  });

  it('keeps each tenant to its own bucket', async () => {
    const app = newApp({ ...api.services, rateLimit: { perSecond: 0.1, burst: 2 } });
    const [busy, quiet] = [await api.newTenant(), await api.newTenant()];
    const get = (apiKey: string) => app.request('/v1/clusters', { headers: { authorization: `Bearer ${apiKey}` } });
    const statuses = [];
    for (let index = 0; index < 5; index++) statuses.push((await get(busy.apiKey)).status);
    expect(statuses).toEqual([200, 200, 429, 429, 429]);
    expect((await get(quiet.apiKey)).status).toBe(200);
  });

  it('holds across instances that take requests ahead: never more than the bucket holds, and one instance alone gets all of it', async () => {
    const policy = { perSecond: 0.01, burst: 30 };
    const instance = () => newApp({ ...api.services, rateLimit: policy, admission: new RequestAdmission() });
    const get = async (app: ReturnType<typeof newApp>, apiKey: string): Promise<number> => (await app.request('/v1/clusters', { headers: { authorization: `Bearer ${apiKey}` } })).status;

    const alone = await api.newTenant();
    // A lease long enough that a slow machine cannot let one lapse between two requests.
    const app = newApp({ ...api.services, rateLimit: policy, admission: new RequestAdmission({ keyTtlMs: 30_000, leaseMs: 60_000, maxLease: 10, maxEntries: 100 }) });
    const statuses: number[] = [];
    for (let index = 0; index < 32; index++) statuses.push(await get(app, alone.apiKey));
    expect(statuses).toEqual([...Array<number>(30).fill(200), 429, 429]);

    // Three instances at once: some requests taken ahead may go unused, none is granted twice.
    const shared = await api.newTenant();
    const apps = [instance(), instance(), instance()];
    const answers = await Promise.all(Array.from({ length: 45 }, (_, index) => get(apps[index % 3] as ReturnType<typeof newApp>, shared.apiKey)));
    const granted = answers.filter((status) => status === 200).length;
    expect(answers.filter((status) => status !== 200 && status !== 429)).toEqual([]);
    expect(granted).toBeLessThanOrEqual(30);
    expect(granted).toBeGreaterThanOrEqual(30 - 3 * 5);
  });

  it('refuses a revoked key at once on the instance that revoked it, and on the others once they read the key again', async () => {
    const keyTtlMs = 300;
    const [revoking, other] = [0, 1].map(() => newApp({ ...api.services, admission: new RequestAdmission({ keyTtlMs, leaseMs: 1_000, maxLease: 10, maxEntries: 100 }) })) as [ReturnType<typeof newApp>, ReturnType<typeof newApp>];
    const { apiKey } = await api.newTenant();
    const call = (app: ReturnType<typeof newApp>, method: string, path: string, body?: unknown) =>
      app.request(path, { method, headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const second = (await (await call(revoking, 'POST', '/v1/api-keys', { description: 'rotation' })).json()) as { apiKey: string };
    const keys = (await (await call(other, 'GET', '/v1/api-keys')).json()) as { items: { id: string; description?: string }[] };
    const first = keys.items.find((key) => key.description !== 'rotation');
    expect(first).toBeDefined();
    expect((await revoking.request(`/v1/api-keys/${first?.id ?? ''}`, { method: 'DELETE', headers: { authorization: `Bearer ${second.apiKey}` } })).status).toBe(204);
    expect((await call(revoking, 'GET', '/v1/clusters')).status).toBe(401);
    // The other instance verified the key a moment ago: it trusts it until the TTL has passed since it read it.
    await new Promise((resolve) => setTimeout(resolve, keyTtlMs));
    expect((await call(other, 'GET', '/v1/clusters')).status).toBe(401);
  });

  it('does not count a request whose token is not valid (it never reaches a bucket)', async () => {
    const response = await api.callRaw('GET', '/v1/clusters', { token: 'kiln_not-a-key' });
    expect(response.status).toBe(401);
    expect(response.headers.get('ratelimit')).toBe(null);
  });
});

describe('per-tenant quotas', () => {
  async function tenantWithQuotas(quotas: { clusters: number; nodes: number }): Promise<string> {
    const created = await api.call<{ apiKey: string; quotas: unknown }>('POST', '/v1/tenants', { token: api.adminToken, body: { name: `quota-${String(Date.now())}`, quotas } });
    expect(created.status).toBe(201);
    expect(created.body.quotas).toEqual(quotas);
    return created.body.apiKey;
  }

  it("refuses an order past the tenant's nodes with 403 quota_exceeded saying what it holds, and creates nothing", async () => {
    const apiKey = await tenantWithQuotas({ clusters: 5, nodes: 8 });
    expect((await api.call('POST', '/v1/clusters', { token: apiKey, body: order('first', 2) })).status).toBe(202);
    expect((await api.call('GET', '/v1/quotas', { token: apiKey })).body).toEqual({ clusters: { limit: 5, used: 1 }, nodes: { limit: 8, used: 5 } });

    const tooBig = await api.call<Problem>('POST', '/v1/clusters', { token: apiKey, body: order('second', 1) });
    expectProblem(tooBig, 403, 'quota_exceeded');
    expect(tooBig.body.detail).toBe(
      "This needs 1 more cluster and 4 more nodes, and the tenant holds 1 of its 5 clusters and 5 of its 8 nodes (a cluster counts its control-plane replicas and each pool's max). Delete a cluster, make the order smaller, or ask the operator for a larger quota.",
    );
    const clusters = await api.call<{ items: { name: string }[] }>('GET', '/v1/clusters', { token: apiKey });
    expect(clusters.body.items.map((cluster) => cluster.name)).toEqual(['first']);
    expect((await api.call('GET', '/v1/quotas', { token: apiKey })).body).toEqual({ clusters: { limit: 5, used: 1 }, nodes: { limit: 8, used: 5 } });
  });

  it("refuses an order past the tenant's clusters", async () => {
    const apiKey = await tenantWithQuotas({ clusters: 1, nodes: 100 });
    expect((await api.call('POST', '/v1/clusters', { token: apiKey, body: order('first', 1) })).status).toBe(202);
    const refused = await api.call<Problem>('POST', '/v1/clusters', { token: apiKey, body: order('second', 1) });
    expectProblem(refused, 403, 'quota_exceeded');
    expect(refused.body.detail).toContain('the tenant holds 1 of its 1 clusters and 4 of its 100 nodes');
  });

  it("gives a tenant the deployment's defaults when the admin gave none", async () => {
    const { apiKey } = await api.newTenant();
    const defaults = api.services.store.defaultQuotas;
    expect((await api.call('GET', '/v1/quotas', { token: apiKey })).body).toEqual({ clusters: { limit: defaults.clusters, used: 0 }, nodes: { limit: defaults.nodes, used: 0 } });
  });

  it('refuses quotas of the wrong shape at tenant creation with 400 at their pointer', async () => {
    const response = await api.call<Problem>('POST', '/v1/tenants', { token: api.adminToken, body: { name: 'bad-quotas', quotas: { clusters: -1, nodes: 10 } } });
    expectProblem(response, 400, 'validation_failed');
    expect(response.body.errors).toEqual([expect.objectContaining({ pointer: '/quotas/clusters' })]);
  });
});
