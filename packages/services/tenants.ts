import { randomBytes, timingSafeEqual } from 'node:crypto';
import { type Tenant, newId, sha256 } from '#core';
import type { KilnServices } from './context.ts';

const API_KEY_PREFIX = 'kiln_';

export async function createTenant(services: KilnServices, name: string): Promise<Tenant & { apiKey: string }> {
  const apiKey = `${API_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
  const tenant: Tenant = { id: newId('tenant'), name, createdAt: new Date().toISOString() };
  await services.store.createTenant({ ...tenant, apiKeyHash: sha256(apiKey) });
  return { ...tenant, apiKey };
}

export type Principal = { kind: 'admin' } | { kind: 'tenant'; tenantId: string; tenantName: string };

/** Resolves a bearer token to the admin or a tenant; unknown tokens resolve to nothing. */
export async function authenticate(services: KilnServices, token: string): Promise<Principal | undefined> {
  const digest = sha256(token);
  const adminDigest = services.adminTokenSha256;
  if (adminDigest !== undefined && timingSafeEqual(Buffer.from(digest, 'hex'), Buffer.from(adminDigest, 'hex'))) {
    return { kind: 'admin' };
  }
  if (!token.startsWith(API_KEY_PREFIX)) return undefined;
  const tenant = await services.store.findTenantByApiKeyHash(digest);
  return tenant === undefined ? undefined : { kind: 'tenant', tenantId: tenant.id, tenantName: tenant.name };
}
