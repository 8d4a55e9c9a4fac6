import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, ClusterSpec, type Problem, newId } from '#core';
import { expectProblem } from '../../../test/support/api.ts';
import { type ApiHarness, startApiHarness } from '../../../test/support/api-harness.ts';

let api: ApiHarness;
beforeAll(async () => {
  api = await startApiHarness();
});
afterAll(async () => {
  await api.close();
});

/** A Ready cluster as provisioning leaves it (creating one through the API starts a workflow, which the harness has not). */
async function readyCluster(tenantId: string, name: string, phase: 'Ready' | 'Deleted' = 'Ready'): Promise<string> {
  const id = newId('cluster');
  const now = new Date().toISOString();
  const spec = ClusterSpec.parse({ name, region: 'eu-central-1', nodePools: [{ name: 'default', size: 1 }] });
  await api.services.store.createCluster(
    { tenantId, id, name, spec, status: { phase, conditions: [] }, createdAt: now, updatedAt: now, version: 1 },
    { tenantId, id: newId('operation'), type: 'provision', clusterId: id, state: 'succeeded', steps: {}, createdAt: now, updatedAt: now, finishedAt: now, version: 1 },
  );
  return id;
}

describe('GET /v1/clusters/{id}', () => {
  it('answers 304 with the ETag when If-None-Match names the current version (or *), and the cluster otherwise', async () => {
    const tenant = await api.newTenant();
    const id = await readyCluster(tenant.id, 'cached');
    const first = await api.call<Cluster>('GET', `/v1/clusters/${id}`, { token: tenant.apiKey });
    expect(first.status).toBe(200);
    const etag = first.headers.get('etag') ?? '';
    expect(etag).toBe('"v1"');
    expect(first.headers.get('cache-control')).toBe('private, no-cache');
    for (const tag of [etag, `W/${etag}`, `"v0", ${etag}`, '*']) {
      const unchanged = await api.callRaw('GET', `/v1/clusters/${id}`, { token: tenant.apiKey, headers: { 'if-none-match': tag } });
      expect(unchanged.status, tag).toBe(304);
      expect(unchanged.text).toBe('');
      expect(unchanged.headers.get('etag')).toBe(etag);
    }
    const stale = await api.callRaw('GET', `/v1/clusters/${id}`, { token: tenant.apiKey, headers: { 'if-none-match': '"v0"' } });
    expect(stale.status).toBe(200);
  });
});

describe('GET /v1/clusters?name=', () => {
  it('lists the one cluster with that name, or none, and never another tenant\'s', async () => {
    const tenant = await api.newTenant();
    const other = await api.newTenant();
    const id = await readyCluster(tenant.id, 'by-name');
    await readyCluster(tenant.id, 'another');
    await readyCluster(other.id, 'by-name');
    const found = await api.call<{ items: Cluster[]; nextCursor?: string }>('GET', '/v1/clusters?name=by-name', { token: tenant.apiKey });
    expect(found.status).toBe(200);
    expect(found.body.items.map((cluster) => cluster.id)).toEqual([id]);
    expect(found.body.nextCursor).toBeUndefined();
    expect((await api.call<{ items: Cluster[] }>('GET', '/v1/clusters?name=nothing-here', { token: tenant.apiKey })).body.items).toEqual([]);
    expectProblem(await api.call<Problem>('GET', `/v1/clusters?name=${'x'.repeat(64)}`, { token: tenant.apiKey }), 400, 'validation_failed');
  });
});

describe('If-Match on DELETE', () => {
  it('takes * as any current version (404 when there is none), a stale tag as 412, and says what a malformed one should be', async () => {
    const tenant = await api.newTenant();
    const id = await readyCluster(tenant.id, 'if-match');
    const missing = newId('cluster');
    expectProblem(await api.callRaw('DELETE', `/v1/clusters/${missing}`, { token: tenant.apiKey, headers: { 'if-match': '*' } }), 404, 'not_found');
    expectProblem(await api.callRaw('DELETE', `/v1/clusters/${id}`, { token: tenant.apiKey, headers: { 'if-match': '"v9"' } }), 412, 'precondition_failed');
    const malformed = await api.callRaw('DELETE', `/v1/clusters/${id}`, { token: tenant.apiKey, headers: { 'if-match': 'v1' } });
    expectProblem(malformed, 412, 'precondition_failed');
    expect(malformed.text).toContain('or *');
    const deleted = await api.callRaw('DELETE', `/v1/clusters/${id}`, { token: tenant.apiKey, headers: { 'if-match': '*' } });
    expect(deleted.status).toBe(202);
    // The operation to follow, and when to look (the workflow starts later here: the harness has no Step Functions).
    expect(deleted.headers.get('operation-location')).toMatch(/^\/v1\/operations\/op_/);
    expect(deleted.headers.get('retry-after')).toBe('10');
    // The answer's ETag is the version the change wrote, ready for the next If-Match.
    expect(deleted.headers.get('etag')).toBe('"v2"');
    expect((await api.call('GET', `/v1/clusters/${id}`, { token: tenant.apiKey })).headers.get('etag')).toBe('"v2"');
  });

  it('gives PATCH answers the ETag of the version they leave: unchanged (200) or the update it started (202)', async () => {
    const tenant = await api.newTenant();
    const id = await readyCluster(tenant.id, 'patched');
    const unchanged = await api.callRaw('PATCH', `/v1/clusters/${id}`, { token: tenant.apiKey, body: '{}', headers: { 'content-type': 'application/merge-patch+json' } });
    expect(unchanged.status).toBe(200);
    expect(unchanged.headers.get('etag')).toBe('"v1"');
    const changed = await api.callRaw('PATCH', `/v1/clusters/${id}`, {
      token: tenant.apiKey,
      body: JSON.stringify({ maintenance: { autoUpdate: false } }),
      headers: { 'content-type': 'application/merge-patch+json', 'if-match': '"v1"' },
    });
    expect(changed.status).toBe(202);
    expect(changed.headers.get('etag')).toBe('"v2"');
  });
});

describe('a cluster whose deletion finished', () => {
  it('answers 404 and is not listed, while its operations and events stay readable', async () => {
    const tenant = await api.newTenant();
    const live = await readyCluster(tenant.id, 'live');
    const deleted = await readyCluster(tenant.id, 'gone', 'Deleted');
    expectProblem(await api.call<Problem>('GET', `/v1/clusters/${deleted}`, { token: tenant.apiKey }), 404, 'not_found');
    expectProblem(await api.call<Problem>('DELETE', `/v1/clusters/${deleted}`, { token: tenant.apiKey }), 404, 'not_found');
    expectProblem(await api.call<Problem>('PATCH', `/v1/clusters/${deleted}`, { token: tenant.apiKey, body: { nodeHealth: null } }), 404, 'not_found');
    const listed = await api.call<{ items: Cluster[] }>('GET', '/v1/clusters', { token: tenant.apiKey });
    expect(listed.body.items.map((cluster) => cluster.id)).toEqual([live]);
    expect((await api.call<{ items: Cluster[] }>('GET', '/v1/clusters?name=gone', { token: tenant.apiKey })).body.items).toEqual([]);
    expect((await api.call('GET', `/v1/clusters/${deleted}/operations`, { token: tenant.apiKey })).status).toBe(200);
    expect((await api.call('GET', `/v1/clusters/${deleted}/events`, { token: tenant.apiKey })).status).toBe(200);
  });
});
