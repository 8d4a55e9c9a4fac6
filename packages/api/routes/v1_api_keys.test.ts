import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Problem } from '#core';
import { expectProblem } from '../../../test/support/api.ts';
import { type ApiHarness, startApiHarness } from '../../../test/support/api-harness.ts';

let api: ApiHarness;
beforeAll(async () => {
  api = await startApiHarness();
});
afterAll(async () => {
  await api.close();
});

interface KeyBody {
  id: string;
  prefix: string;
  description?: string;
  scopes: string[];
  expiresAt?: string;
  createdAt: string;
  lastUsedAt?: string;
  apiKey?: string;
}

describe('/v1/api-keys', () => {
  it('lists the first key, creates a second (shown once), and revokes the first: it gets 401 at once', async () => {
    const { apiKey: first } = await api.newTenant();
    const listed = await api.call<{ items: KeyBody[] }>('GET', '/v1/api-keys', { token: first });
    expect(listed.status).toBe(200);
    expect(listed.body.items).toHaveLength(1);
    const [original] = listed.body.items;
    expect(original?.prefix).toBe(first.slice(0, 13));
    expect(original?.lastUsedAt).toBeDefined();
    expect(JSON.stringify(listed.body)).not.toContain(first.slice(13));

    const created = await api.call<KeyBody>('POST', '/v1/api-keys', { token: first, body: { description: 'billing portal' } });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe(`/v1/api-keys/${created.body.id}`);
    expect(created.headers.get('cache-control')).toBe('no-store');
    expect(created.body).toMatchObject({ description: 'billing portal', prefix: created.body.apiKey?.slice(0, 13) });
    const second = created.body.apiKey ?? '';
    expect((await api.call<{ items: KeyBody[] }>('GET', '/v1/api-keys', { token: second })).body.items.map((key) => key.id)).toEqual([original?.id, created.body.id]);
    expect(JSON.stringify((await api.call('GET', '/v1/api-keys', { token: second })).body)).not.toContain(second.slice(13));

    const revoked = await api.call('DELETE', `/v1/api-keys/${original?.id ?? ''}`, { token: second });
    expect(revoked.status).toBe(204);
    expectProblem(await api.call<Problem>('GET', '/v1/clusters', { token: first }), 401, 'unauthorized');
    expect((await api.call('GET', '/v1/clusters', { token: second })).status).toBe(200);
    expect((await api.call<{ items: KeyBody[] }>('GET', '/v1/api-keys', { token: second })).body.items.map((key) => key.id)).toEqual([created.body.id]);
  });

  it("refuses to revoke the tenant's last key, another tenant's key, and a key that does not exist", async () => {
    const { apiKey } = await api.newTenant();
    const [only] = (await api.call<{ items: KeyBody[] }>('GET', '/v1/api-keys', { token: apiKey })).body.items;
    const last = await api.call<Problem>('DELETE', `/v1/api-keys/${only?.id ?? ''}`, { token: apiKey });
    expectProblem(last, 409, 'conflict');
    expect(last.body.detail).toContain('last API key');

    const { apiKey: other } = await api.newTenant();
    expectProblem(await api.call<Problem>('DELETE', `/v1/api-keys/${only?.id ?? ''}`, { token: other }), 404, 'not_found');
    expectProblem(await api.call<Problem>('DELETE', '/v1/api-keys/key_01jd8x7t5k3m4n5p6q7r8s9t0v', { token: apiKey }), 404, 'not_found');
    expectProblem(await api.call<Problem>('DELETE', '/v1/api-keys/nonsense', { token: apiKey }), 400, 'validation_failed');
    expect((await api.call('GET', '/v1/clusters', { token: apiKey })).status).toBe(200);
  });

  it('checks the body and refuses the admin token', async () => {
    const { apiKey } = await api.newTenant();
    expectProblem(await api.call<Problem>('POST', '/v1/api-keys', { token: apiKey, body: { descripton: 'typo' } }), 400, 'validation_failed');
    expectProblem(await api.call<Problem>('GET', '/v1/api-keys', { token: api.adminToken }), 403, 'forbidden');
  });

  it('shows each key\'s scopes and expiry, and a key with keys may give only what it holds', async () => {
    const { apiKey: first } = await api.newTenant();
    const expiresAt = new Date(Date.now() + 7 * 86_400_000).toISOString();
    const webhooks = await api.call<KeyBody>('POST', '/v1/api-keys', { token: first, body: { description: 'webhook admin', scopes: ['webhooks', 'keys'], expiresAt } });
    expect(webhooks.status, webhooks.text).toBe(201);
    expect(webhooks.body).toMatchObject({ scopes: ['read-only', 'webhooks', 'keys'], expiresAt });
    const listed = await api.call<{ items: KeyBody[] }>('GET', '/v1/api-keys', { token: first });
    expect(listed.body.items.map((key) => ({ scopes: key.scopes, expiresAt: key.expiresAt }))).toEqual([
      { scopes: ['read-only', 'clusters', 'webhooks', 'keys'], expiresAt: undefined },
      { scopes: ['read-only', 'webhooks', 'keys'], expiresAt },
    ]);

    const token = webhooks.body.apiKey ?? '';
    const wider = await api.call<Problem>('POST', '/v1/api-keys', { token, body: { scopes: ['clusters'] } });
    expectProblem(wider, 403, 'forbidden');
    expect(wider.body.detail).toContain('clusters');
    const longer = await api.call<Problem>('POST', '/v1/api-keys', { token, body: { expiresAt: new Date(Date.now() + 8 * 86_400_000).toISOString() } });
    expectProblem(longer, 403, 'forbidden');
    // Without scopes or expiry: the calling key's.
    const narrower = await api.call<KeyBody>('POST', '/v1/api-keys', { token, body: {} });
    expect(narrower.body).toMatchObject({ scopes: ['read-only', 'webhooks', 'keys'], expiresAt });
    // It cannot revoke the first key, which holds clusters.
    const firstId = listed.body.items[0]?.id ?? '';
    expectProblem(await api.call('DELETE', `/v1/api-keys/${firstId}`, { token }), 403, 'forbidden');
  });

  it('refuses an expiry in the past, beyond a year, or not in RFC 3339, and a scope it does not know', async () => {
    const { apiKey } = await api.newTenant();
    for (const body of [
      { expiresAt: new Date(Date.now() - 60_000).toISOString() },
      { expiresAt: new Date(Date.now() + 366 * 86_400_000).toISOString() },
      { expiresAt: 'next tuesday' },
      { scopes: ['admin'] },
      { scopes: [] },
    ]) {
      const refused = await api.call<Problem>('POST', '/v1/api-keys', { token: apiKey, body });
      expectProblem(refused, 400, 'validation_failed');
      expect(refused.body.errors?.[0]?.pointer, JSON.stringify(body)).toMatch(/^\/(expiresAt|scopes)/);
    }
  });
});
