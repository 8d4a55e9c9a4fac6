import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RequestAdmission } from './admission.ts';
import type { KilnServices } from './context.ts';
import { NotFoundError } from '#core';
import { authenticate, tenantExternalId } from './tenants.ts';

/** Services whose store knows one key, counting its reads (each a strongly consistent GetItem in production). */
function withOneKey(known: string) {
  const reads: string[] = [];
  const services = {
    admission: new RequestAdmission(),
    store: {
      findTenantByApiKeyHash: (digest: string) => {
        reads.push(digest);
        return Promise.resolve(digest === sha256Hex(known) ? { id: 'ten_1', name: 'one', lastUsedAt: new Date().toISOString() } : undefined);
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
