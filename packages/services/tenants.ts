import { randomBytes, timingSafeEqual } from 'node:crypto';
import { type AccountTrust, type ApiKey, type ApiKeyCreated, ConflictError, NotFoundError, type Quotas, type Tenant, type TenantCreated, newId, sha256 } from '#core';
import type { ApiKeyRecord } from '#store';
import type { TenantPrincipal } from './admission.ts';
import type { KilnServices } from './context.ts';

const API_KEY_PREFIX = 'kiln_';
/** What every key Kiln issues looks like: the prefix and 32 random bytes in base64url (43 characters). */
const API_KEY_FORMAT = /^kiln_[A-Za-z0-9_-]{43}$/;
/** How much of a key its owner sees again: `kiln_` and eight characters of its 43. */
const SHOWN_CHARACTERS = API_KEY_PREFIX.length + 8;
/** A key's lastUsedAt is written at most this often (a write per request would double the API's DynamoDB cost). */
const LAST_USED_RESOLUTION_MS = 15 * 60_000;

/** A new random key and what Kiln keeps of it. */
function newApiKey(tenantId: string, description: string | undefined, now: string): { apiKey: string; record: ApiKeyRecord } {
  const apiKey = `${API_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
  return {
    apiKey,
    record: { tenantId, id: newId('apiKey'), prefix: apiKey.slice(0, SHOWN_CHARACTERS), ...(description === undefined ? {} : { description }), apiKeyHash: sha256(apiKey), createdAt: now },
  };
}

function apiKeyView(record: ApiKeyRecord & { lastUsedAt?: string }): ApiKey {
  return {
    id: record.id,
    prefix: record.prefix,
    ...(record.description === undefined ? {} : { description: record.description }),
    createdAt: record.createdAt,
    ...(record.lastUsedAt === undefined ? {} : { lastUsedAt: record.lastUsedAt }),
  };
}

/**
 * A new external ID: 24 random bytes (unguessable, so no tenant can present another's to a role), in the characters
 * STS accepts for one ([\w+=,.@:/-], 2 to 1224 of them).
 */
function newExternalId(): string {
  return `kiln-${randomBytes(24).toString('base64url')}`;
}

export async function createTenant(services: KilnServices, name: string, quotas: Quotas = services.store.defaultQuotas): Promise<TenantCreated> {
  const tenant: Tenant = { id: newId('tenant'), name, externalId: newExternalId(), createdAt: new Date().toISOString() };
  const { apiKey, record } = newApiKey(tenant.id, 'created with the tenant', tenant.createdAt);
  await services.store.createTenant(tenant, record, quotas);
  return { ...tenant, apiKey, quotas };
}

/** The external ID Kiln sends to the tenant's roles: the tenant's own, issued once and then fixed. */
export async function tenantExternalId(services: KilnServices, tenantId: string): Promise<string> {
  const tenant = await services.store.getTenant(tenantId);
  const externalId = tenant?.externalId ?? (tenant === undefined ? undefined : await services.store.ensureTenantExternalId(tenantId, newExternalId()));
  if (externalId === undefined) throw new NotFoundError('tenant', tenantId);
  return externalId;
}

/** What the tenant's role trusts: Kiln's account, on the condition of the tenant's external ID, and a policy saying so. */
export async function accountTrust(services: KilnServices, tenantId: string): Promise<AccountTrust> {
  const externalId = await tenantExternalId(services, tenantId);
  const trustPolicy = {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { AWS: `arn:aws:iam::${services.kilnAccountId}:root` },
        Action: 'sts:AssumeRole',
        Condition: { StringEquals: { 'sts:ExternalId': externalId } },
      },
    ],
  };
  return { kilnAccountId: services.kilnAccountId, externalId, trustPolicy: JSON.stringify(trustPolicy) };
}

/** A further API key for the tenant (to rotate: create, switch, revoke the old one); the key is shown once. */
export async function createApiKey(services: KilnServices, tenantId: string, description?: string): Promise<ApiKeyCreated> {
  const tenant = await services.store.getTenant(tenantId);
  if (tenant === undefined) throw new NotFoundError('tenant', tenantId);
  const { apiKey, record } = newApiKey(tenantId, description, new Date().toISOString());
  await services.store.createApiKey(tenant, record);
  return { ...apiKeyView(record), apiKey };
}

export async function listApiKeys(services: KilnServices, tenantId: string): Promise<ApiKey[]> {
  return (await services.store.listApiKeys(tenantId)).map(apiKeyView);
}

/**
 * Revokes a key: the next request with it gets 401 (on other API instances that verified it just before, within their
 * key TTL; see RequestAdmission). The tenant's last key cannot go (its owner would be locked out).
 */
export async function revokeApiKey(services: KilnServices, tenantId: string, keyId: string): Promise<void> {
  const outcome = await services.store.revokeApiKey(tenantId, keyId);
  services.admission?.forgetTenant(tenantId);
  if (outcome === 'missing') throw new NotFoundError('API key', keyId);
  if (outcome === 'last') throw new ConflictError('This is the tenant\'s last API key: create another one first, then revoke this one.');
}

export type Principal = { kind: 'admin' } | TenantPrincipal;

/** Resolves a bearer token to the admin or a tenant; unknown tokens resolve to nothing. */
export async function authenticate(services: KilnServices, token: string): Promise<Principal | undefined> {
  const digest = sha256(token);
  const adminDigest = services.adminTokenSha256;
  if (adminDigest !== undefined && timingSafeEqual(Buffer.from(digest, 'hex'), Buffer.from(adminDigest, 'hex'))) {
    return { kind: 'admin' };
  }
  // No key Kiln issued looks otherwise: refused before any read.
  if (!API_KEY_FORMAT.test(token)) return undefined;
  const now = Date.now();
  const known = services.admission?.knownKey(digest, now);
  if (known !== undefined) return known;
  if (services.admission?.unknownKey(digest, now) === true) return undefined;
  const tenant = await services.store.findTenantByApiKeyHash(digest);
  if (tenant === undefined) {
    services.admission?.rememberUnknownKey(digest, now);
    return undefined;
  }
  // lastUsedAt is written when the key is read, at most every 15 minutes; a key in use is read every keyTtlMs.
  if (tenant.lastUsedAt === undefined || now - Date.parse(tenant.lastUsedAt) >= LAST_USED_RESOLUTION_MS) await services.store.touchApiKey(digest, new Date(now).toISOString());
  const principal: TenantPrincipal = { kind: 'tenant', tenantId: tenant.id, tenantName: tenant.name, ...(tenant.keyId === undefined ? {} : { keyId: tenant.keyId }) };
  // Remembered from when it was read (a hit does not extend it), so a revocation elsewhere is seen within the TTL.
  services.admission?.rememberKey(digest, principal, now);
  return principal;
}
