import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type ApiKeyScope, NotFoundError } from '#core';
import type { ApiKeyRecord } from '#store';
import { RequestAdmission, type TenantPrincipal } from './admission.ts';
import type { KilnServices } from './context.ts';
import { authenticate, createApiKey, resumeTenant, revokeApiKey, suspendTenant, tenantExternalId } from './tenants.ts';

/** Services whose store knows one key, counting its reads (each a strongly consistent GetItem in production). */
function withOneKey(known: string) {
  const reads: string[] = [];
  const services = {
    admission: new RequestAdmission(),
    store: {
      findTenantByApiKeyHash: (digest: string) => {
        reads.push(digest);
        return Promise.resolve(digest === sha256Hex(known) ? { id: 'ten_1', name: 'one', scopes: ['read-only'], lastUsedAt: new Date().toISOString() } : undefined);
      },
      touchApiKey: () => Promise.resolve(),
    },
  } as unknown as KilnServices;
  return { services, reads };
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

const KEY = `kiln_${'A'.repeat(43)}`;

describe('authenticating an API key', () => {
  it('refuses a token that is not shaped like a key Kiln issues without reading anything', async () => {
    const { services, reads } = withOneKey(KEY);
    for (const token of ['kiln_short', `kiln_${'A'.repeat(44)}`, `kiln_${'!'.repeat(43)}`, 'Bearer-ish', '']) expect(await authenticate(services, token)).toBeUndefined();
    expect(reads).toEqual([]);
  });

  it('reads an unknown key once per TTL and refuses it again from memory', async () => {
    const { services, reads } = withOneKey(KEY);
    const unknown = `kiln_${'B'.repeat(43)}`;
    expect(await authenticate(services, unknown)).toBeUndefined();
    expect(await authenticate(services, unknown)).toBeUndefined();
    expect(reads).toHaveLength(1);
    expect(await authenticate(services, KEY)).toMatchObject({ kind: 'tenant', tenantId: 'ten_1' });
  });
});

/** Services whose store holds one tenant's keys and its suspension, counting the key reads. */
function tenantWithKeys(keys: Record<string, ApiKeyRecord>) {
  const reads: string[] = [];
  const created: ApiKeyRecord[] = [];
  const revoked: string[] = [];
  const tenant = { id: 'ten_1', name: 'one', externalId: 'kiln-external', createdAt: '2026-12-01T00:00:00.000Z' };
  let suspendedAt: string | undefined;
  const services = {
    admission: new RequestAdmission(),
    store: {
      findTenantByApiKeyHash: (digest: string) => {
        reads.push(digest);
        const key = Object.values(keys).find((record) => record.apiKeyHash === digest);
        return Promise.resolve(
          key === undefined
            ? undefined
            : { id: tenant.id, name: tenant.name, keyId: key.id, scopes: key.scopes ?? [], ...(key.validUntil === undefined ? {} : { validUntil: key.validUntil }), lastUsedAt: new Date().toISOString(), ...(suspendedAt === undefined ? {} : { suspendedAt }) },
        );
      },
      touchApiKey: () => Promise.resolve(),
      getTenant: () => Promise.resolve(tenant),
      createApiKey: (_tenant: unknown, record: ApiKeyRecord) => {
        created.push(record);
        return Promise.resolve();
      },
      getApiKey: (_tenantId: string, keyId: string) => Promise.resolve(Object.values(keys).find((record) => record.id === keyId)),
      listApiKeys: () => Promise.resolve(Object.values(keys).filter((record) => !revoked.includes(record.id))),
      revokeApiKey: (_tenantId: string, keyId: string) => {
        revoked.push(keyId);
        return Promise.resolve('revoked' as const);
      },
      suspendTenant: (_tenantId: string, at: string) => {
        suspendedAt ??= at;
        return Promise.resolve({ ...tenant, suspendedAt });
      },
      resumeTenant: () => {
        suspendedAt = undefined;
        return Promise.resolve(tenant);
      },
    },
  } as unknown as KilnServices;
  return { services, reads, created, revoked };
}

const keyRecord = (token: string, id: string, scopes: ApiKeyScope[], validUntil?: string): ApiKeyRecord => ({
  tenantId: 'ten_1',
  id,
  prefix: token.slice(0, 13),
  apiKeyHash: sha256Hex(token),
  scopes,
  ...(validUntil === undefined ? {} : { validUntil }),
  createdAt: '2026-12-01T00:00:00.000Z',
});

const ALL: ApiKeyScope[] = ['read-only', 'clusters', 'webhooks', 'keys'];
const caller = (scopes: ApiKeyScope[], keyExpiresAt?: string): TenantPrincipal => ({ kind: 'tenant', tenantId: 'ten_1', tenantName: 'one', keyId: 'key_caller', scopes, ...(keyExpiresAt === undefined ? {} : { keyExpiresAt }) });
const inDays = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString();

describe('an API key of a suspended tenant', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is refused, saying so, from when it is next read; the suspension is remembered for the key TTL, as the key is', async () => {
    const { services, reads } = tenantWithKeys({ first: keyRecord(KEY, 'key_1', ALL) });
    const elsewhere = { ...services, admission: new RequestAdmission() };
    vi.useFakeTimers({ toFake: ['Date'] });
    const start = Date.now();
    expect(await authenticate(elsewhere, KEY)).toMatchObject({ tenantId: 'ten_1', keyId: 'key_1', scopes: ALL });
    await suspendTenant(services, 'ten_1');
    await expect(authenticate(services, KEY)).rejects.toThrow(/tenant is suspended/);
    // Elsewhere the key read before the suspension is trusted for the TTL, then read again and refused.
    vi.setSystemTime(start + 29_999);
    expect(await authenticate(elsewhere, KEY)).toMatchObject({ tenantId: 'ten_1' });
    vi.setSystemTime(start + 30_000);
    await expect(authenticate(elsewhere, KEY)).rejects.toMatchObject({ code: 'unauthorized' });
    const readsWhileSuspended = reads.length;
    await expect(authenticate(elsewhere, KEY)).rejects.toMatchObject({ code: 'unauthorized' });
    expect(reads).toHaveLength(readsWhileSuspended);

    // Resumed: the suspension read elsewhere is remembered for the TTL too, no longer.
    await resumeTenant(services, 'ten_1');
    expect(await authenticate(services, KEY)).toMatchObject({ tenantId: 'ten_1' });
    vi.setSystemTime(start + 59_999);
    await expect(authenticate(elsewhere, KEY)).rejects.toMatchObject({ code: 'unauthorized' });
    vi.setSystemTime(start + 60_000);
    expect(await authenticate(elsewhere, KEY)).toMatchObject({ tenantId: 'ten_1' });
  });
});

describe('an expiring API key', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is refused from its expiry on, saying when it expired, even while it is remembered', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const expiresAt = new Date(Date.now() + 10_000).toISOString();
    const { services, reads } = tenantWithKeys({ first: keyRecord(KEY, 'key_1', ['read-only'], expiresAt) });
    expect(await authenticate(services, KEY)).toMatchObject({ keyExpiresAt: expiresAt });
    vi.setSystemTime(Date.parse(expiresAt));
    await expect(authenticate(services, KEY)).rejects.toThrow(`expired at ${expiresAt}`);
    expect(reads).toHaveLength(1);
  });
});

describe('creating an API key', () => {
  it("gives the new key the calling key's scopes and expiry when the order names none", async () => {
    const { services, created } = tenantWithKeys({});
    const expiry = inDays(30);
    const key = await createApiKey(services, caller(['read-only', 'webhooks'], expiry), { description: 'portal' });
    expect(key).toMatchObject({ description: 'portal', scopes: ['read-only', 'webhooks'], expiresAt: expiry });
    expect(created[0]).toMatchObject({ scopes: ['read-only', 'webhooks'], validUntil: expiry });
    expect(key.apiKey).toMatch(/^kiln_/);
  });

  it('always gives read-only, each scope once, and keeps the expiry in UTC', async () => {
    const { services } = tenantWithKeys({});
    const key = await createApiKey(services, caller(ALL), { scopes: ['keys', 'clusters', 'keys'], expiresAt: '2027-01-01T01:00:00+01:00' });
    expect(key).toMatchObject({ scopes: ['read-only', 'clusters', 'keys'], expiresAt: '2027-01-01T00:00:00.000Z' });
  });

  it('refuses a scope the calling key does not hold, naming it, and creates nothing', async () => {
    const { services, created } = tenantWithKeys({});
    await expect(createApiKey(services, caller(['read-only', 'webhooks']), { scopes: ['webhooks', 'keys', 'clusters'] })).rejects.toMatchObject({
      code: 'forbidden',
      detail: expect.stringContaining('clusters, keys') as unknown,
    });
    expect(created).toEqual([]);
  });

  it("refuses an expiry past the calling key's, in the past, or more than a year ahead", async () => {
    const { services, created } = tenantWithKeys({});
    await expect(createApiKey(services, caller(ALL, inDays(1)), { expiresAt: inDays(2) })).rejects.toMatchObject({ code: 'forbidden' });
    await expect(createApiKey(services, caller(ALL), { expiresAt: inDays(-1) })).rejects.toMatchObject({ code: 'validation_failed', errors: [{ pointer: '/expiresAt', detail: 'must be in the future' }] });
    await expect(createApiKey(services, caller(ALL), { expiresAt: inDays(366) })).rejects.toMatchObject({ code: 'validation_failed', errors: [{ pointer: '/expiresAt', detail: 'must be at most 365 days ahead' }] });
    expect(created).toEqual([]);
    expect((await createApiKey(services, caller(ALL), { expiresAt: inDays(364) })).expiresAt).toBeDefined();
  });
});

describe('revoking an API key', () => {
  it('refuses a key with a scope the calling key lacks (a narrow key cannot lock out a wider one)', async () => {
    const { services, revoked } = tenantWithKeys({ wide: keyRecord(KEY, 'key_wide', ALL), narrow: keyRecord(`kiln_${'C'.repeat(43)}`, 'key_narrow', ['read-only', 'keys']) });
    await expect(revokeApiKey(services, caller(['read-only', 'keys']), 'key_wide')).rejects.toMatchObject({ code: 'forbidden', detail: expect.stringContaining('clusters, webhooks') as unknown });
    expect(revoked).toEqual([]);
    await revokeApiKey(services, caller(['read-only', 'keys']), 'key_narrow');
    expect(revoked).toEqual(['key_narrow']);
  });
});

describe('revoking the last key that can create keys', () => {
  it('is refused while no other unexpired key holds keys, so the tenant can always make a key again', async () => {
    const expired = new Date(Date.now() - 1_000).toISOString();
    const { services, revoked } = tenantWithKeys({
      manager: keyRecord(KEY, 'key_manager', ALL),
      expiredManager: keyRecord(`kiln_${'D'.repeat(43)}`, 'key_expired', ALL, expired),
      reader: keyRecord(`kiln_${'E'.repeat(43)}`, 'key_reader', ['read-only']),
    });
    await expect(revokeApiKey(services, caller(ALL), 'key_manager')).rejects.toMatchObject({ code: 'conflict', detail: expect.stringContaining('last API key that can create keys') as unknown });
    await revokeApiKey(services, caller(ALL), 'key_reader');
    await revokeApiKey(services, caller(ALL), 'key_expired');
    expect(revoked).toEqual(['key_reader', 'key_expired']);
  });
});

describe("the tenant's external ID", () => {
  /** A store with one tenant made before Kiln issued external IDs, which keeps the first one written. */
  function withLegacyTenant() {
    let stored: string | undefined;
    const services = {
      store: {
        getTenant: (tenantId: string) =>
          Promise.resolve(tenantId === 'ten_1' ? { id: 'ten_1', name: 'one', createdAt: '2026-01-01T00:00:00.000Z', ...(stored === undefined ? {} : { externalId: stored }) } : undefined),
        ensureTenantExternalId: (tenantId: string, candidate: string) => {
          if (tenantId !== 'ten_1') return Promise.resolve(undefined);
          stored ??= candidate;
          return Promise.resolve(stored);
        },
      },
    } as unknown as KilnServices;
    return services;
  }

  it('is issued once to a tenant from before external IDs, random, and the same ever after', async () => {
    const services = withLegacyTenant();
    const first = await tenantExternalId(services, 'ten_1');
    expect(first).toMatch(/^kiln-[A-Za-z0-9_-]{32}$/);
    expect(await tenantExternalId(services, 'ten_1')).toBe(first);
    expect(await tenantExternalId(withLegacyTenant(), 'ten_1')).not.toBe(first);
  });

  it('is a 404 for a tenant that does not exist', async () => {
    await expect(tenantExternalId(withLegacyTenant(), 'ten_2')).rejects.toBeInstanceOf(NotFoundError);
  });
});
