import { randomBytes, timingSafeEqual } from 'node:crypto';
import {
  API_KEY_SCOPES,
  type AccountTrust,
  type ApiKey,
  type ApiKeyCreated,
  type ApiKeyScope,
  ConflictError,
  KilnError,
  MAX_API_KEY_LIFETIME_MS,
  NotFoundError,
  type Quotas,
  type Tenant,
  type TenantCreated,
  UnauthorizedError,
  ValidationError,
  missingScopes,
  newId,
  normalizedScopes,
  sha256,
} from '#core';
import type { ApiKeyRecord, TenantRecord } from '#store';
import type { TenantPrincipal, VerifiedKey } from './admission.ts';
import type { KilnServices } from './context.ts';

const API_KEY_PREFIX = 'kiln_';
/** What every key Kiln issues looks like: the prefix and 32 random bytes in base64url (43 characters). */
const API_KEY_FORMAT = /^kiln_[A-Za-z0-9_-]{43}$/;
/** How much of a key its owner sees again: `kiln_` and eight characters of its 43. */
const SHOWN_CHARACTERS = API_KEY_PREFIX.length + 8;
/** A key's lastUsedAt is written at most this often (a write per request would double the API's DynamoDB cost). */
const LAST_USED_RESOLUTION_MS = 15 * 60_000;

/** What a new key may do and until when. */
interface KeyGrant {
  description?: string;
  scopes: ApiKeyScope[];
  validUntil?: string;
}

/** A new random key and what Kiln keeps of it. */
function newApiKey(tenantId: string, grant: KeyGrant, now: string): { apiKey: string; record: ApiKeyRecord } {
  const apiKey = `${API_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
  return {
    apiKey,
    record: { tenantId, id: newId('apiKey'), prefix: apiKey.slice(0, SHOWN_CHARACTERS), ...grant, apiKeyHash: sha256(apiKey), createdAt: now },
  };
}

function apiKeyView(record: ApiKeyRecord & { lastUsedAt?: string }): ApiKey {
  return {
    id: record.id,
    prefix: record.prefix,
    ...(record.description === undefined ? {} : { description: record.description }),
    scopes: record.scopes ?? [...API_KEY_SCOPES],
    ...(record.validUntil === undefined ? {} : { expiresAt: record.validUntil }),
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

/** A tenant with its first key, which may do everything and does not expire (the operator hands it to the tenant). */
export async function createTenant(services: KilnServices, name: string, quotas: Quotas = services.store.defaultQuotas): Promise<TenantCreated> {
  const tenant: Tenant = { id: newId('tenant'), name, externalId: newExternalId(), createdAt: new Date().toISOString() };
  const { apiKey, record } = newApiKey(tenant.id, { description: 'created with the tenant', scopes: [...API_KEY_SCOPES] }, tenant.createdAt);
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

/** What a key orders for a new one: its scopes and expiry, the calling key's when absent. */
export interface ApiKeyRequest {
  description?: string;
  scopes?: readonly ApiKeyScope[];
  expiresAt?: string;
}

/**
 * What a new key may do and until when: never more than the key that creates it (its scopes, its expiry), so a
 * narrow key cannot mint a wider or longer-lived one; at most MAX_API_KEY_LIFETIME_MS ahead.
 */
function grantFor(caller: TenantPrincipal, order: ApiKeyRequest, now: number): KeyGrant {
  const scopes = normalizedScopes(order.scopes ?? caller.scopes);
  const missing = missingScopes(caller.scopes, scopes);
  if (missing.length > 0) throw new KilnError('forbidden', `This key cannot give a key the scope ${missing.join(', ')}, which it does not hold itself.`);
  const granted = { ...(order.description === undefined ? {} : { description: order.description }), scopes };
  if (order.expiresAt === undefined) return { ...granted, ...(caller.keyExpiresAt === undefined ? {} : { validUntil: caller.keyExpiresAt }) };
  const expiresAt = Date.parse(order.expiresAt);
  if (expiresAt <= now) throw new ValidationError('The key would expire before it is made.', [{ pointer: '/expiresAt', detail: 'must be in the future' }]);
  if (expiresAt > now + MAX_API_KEY_LIFETIME_MS) throw new ValidationError('A key lives a year at most.', [{ pointer: '/expiresAt', detail: `must be at most ${String(MAX_API_KEY_LIFETIME_MS / 86_400_000)} days ahead` }]);
  if (caller.keyExpiresAt !== undefined && expiresAt > Date.parse(caller.keyExpiresAt)) {
    throw new KilnError('forbidden', `This key expires at ${caller.keyExpiresAt}: a key it creates cannot outlive it.`);
  }
  return { ...granted, validUntil: new Date(expiresAt).toISOString() };
}

/** A further API key for the tenant (to rotate: create, switch, revoke the old one); the key is shown once. */
export async function createApiKey(services: KilnServices, caller: TenantPrincipal, order: ApiKeyRequest = {}): Promise<ApiKeyCreated> {
  const now = Date.now();
  const grant = grantFor(caller, order, now);
  const tenant = await services.store.getTenant(caller.tenantId);
  if (tenant === undefined) throw new NotFoundError('tenant', caller.tenantId);
  const { apiKey, record } = newApiKey(caller.tenantId, grant, new Date(now).toISOString());
  await services.store.createApiKey(tenant, record);
  return { ...apiKeyView(record), apiKey };
}

export async function listApiKeys(services: KilnServices, tenantId: string): Promise<ApiKey[]> {
  return (await services.store.listApiKeys(tenantId)).map(apiKeyView);
}

/** Whether a key may create keys now: it holds the keys scope and has not expired. */
function makesKeys(key: ApiKeyRecord, now: number): boolean {
  return (key.scopes ?? API_KEY_SCOPES).includes('keys') && (key.validUntil === undefined || Date.parse(key.validUntil) > now);
}

/**
 * Revokes a key: the next request with it gets 401 (on other API instances that verified it just before, within their
 * key TTL; see RequestAdmission). The tenant's last key cannot go, nor its last key that can create keys (its owner
 * would be locked out), nor a key with a scope the caller does not hold (a narrow key cannot lock out a wider one).
 */
export async function revokeApiKey(services: KilnServices, caller: TenantPrincipal, keyId: string): Promise<void> {
  const target = await services.store.getApiKey(caller.tenantId, keyId);
  if (target === undefined) throw new NotFoundError('API key', keyId);
  const missing = missingScopes(caller.scopes, target.scopes ?? API_KEY_SCOPES);
  if (missing.length > 0) throw new KilnError('forbidden', `This key cannot revoke a key with the scope ${missing.join(', ')}, which it does not hold itself.`);
  // Nor the last key that can still make keys: the tenant could never make one again. (Two revocations at once may
  // both pass this look; the store still keeps the tenant's last key of all.)
  const now = Date.now();
  if (makesKeys(target, now) && !(await services.store.listApiKeys(caller.tenantId)).some((key) => key.id !== keyId && makesKeys(key, now))) {
    throw new ConflictError("This is the tenant's last API key that can create keys: create another one with the keys scope first, then revoke this one.");
  }
  const outcome = await services.store.revokeApiKey(caller.tenantId, keyId);
  services.admission?.forgetTenant(caller.tenantId);
  if (outcome === 'missing') throw new NotFoundError('API key', keyId);
  if (outcome === 'last') throw new ConflictError('This is the tenant\'s last API key: create another one first, then revoke this one.');
}

/**
 * Suspends a tenant: every request with its keys gets 401 (at once on this API instance, within the key TTL on the
 * others). Its clusters, workflows and webhooks go on: suspension stops the tenant's calls, not its machines.
 */
export async function suspendTenant(services: KilnServices, tenantId: string): Promise<Tenant> {
  const tenant = await services.store.suspendTenant(tenantId, new Date().toISOString());
  services.admission?.forgetTenant(tenantId);
  if (tenant === undefined) throw new NotFoundError('tenant', tenantId);
  return tenantView(services, tenant);
}

/** Resumes a suspended tenant: its keys work again (at once here, within the key TTL on the other API instances). */
export async function resumeTenant(services: KilnServices, tenantId: string): Promise<Tenant> {
  const tenant = await services.store.resumeTenant(tenantId);
  services.admission?.forgetTenant(tenantId);
  if (tenant === undefined) throw new NotFoundError('tenant', tenantId);
  return tenantView(services, tenant);
}

/** A tenant as the API shows it: with its external ID (issued now to a tenant from before Kiln issued them). */
async function tenantView(services: KilnServices, tenant: TenantRecord): Promise<Tenant> {
  return { ...tenant, externalId: tenant.externalId ?? (await tenantExternalId(services, tenant.id)) };
}

export type Principal = { kind: 'admin' } | TenantPrincipal;

/** Why a key that exists is refused now, if it is. */
function refusal(verified: VerifiedKey, now: number): string | undefined {
  if (verified.tenantSuspended) return 'The tenant is suspended: its API keys are refused until the operator resumes it.';
  const expiresAt = verified.principal.keyExpiresAt;
  if (expiresAt !== undefined && Date.parse(expiresAt) <= now) return `This API key expired at ${expiresAt}: use another key (a key with the keys scope can create one).`;
  return undefined;
}

/**
 * Resolves a bearer token to the admin or a tenant; unknown tokens resolve to nothing, and a known key that may not
 * be used now (expired, or its tenant suspended) is an UnauthorizedError saying why.
 */
export async function authenticate(services: KilnServices, token: string): Promise<Principal | undefined> {
  const digest = sha256(token);
  const adminDigest = services.adminTokenSha256;
  if (adminDigest !== undefined && timingSafeEqual(Buffer.from(digest, 'hex'), Buffer.from(adminDigest, 'hex'))) {
    return { kind: 'admin' };
  }
  // No key Kiln issued looks otherwise: refused before any read.
  if (!API_KEY_FORMAT.test(token)) return undefined;
  const now = Date.now();
  const verified = services.admission?.knownKey(digest, now) ?? (await readKey(services, digest, now));
  if (verified === undefined) return undefined;
  const refused = refusal(verified, now);
  if (refused !== undefined) throw new UnauthorizedError(refused);
  return verified.principal;
}

/** Reads a key (unless it was found unknown within the TTL) and remembers what was read, whether it may be used or not. */
async function readKey(services: KilnServices, digest: string, now: number): Promise<VerifiedKey | undefined> {
  if (services.admission?.unknownKey(digest, now) === true) return undefined;
  const holder = await services.store.findTenantByApiKeyHash(digest);
  if (holder === undefined) {
    services.admission?.rememberUnknownKey(digest, now);
    return undefined;
  }
  const verified: VerifiedKey = {
    principal: {
      kind: 'tenant',
      tenantId: holder.id,
      tenantName: holder.name,
      ...(holder.keyId === undefined ? {} : { keyId: holder.keyId }),
      scopes: holder.scopes,
      ...(holder.validUntil === undefined ? {} : { keyExpiresAt: holder.validUntil }),
    },
    tenantSuspended: holder.suspendedAt !== undefined,
  };
  // lastUsedAt is written when a usable key is read, at most every 15 minutes; a key in use is read every keyTtlMs.
  const stale = holder.lastUsedAt === undefined || now - Date.parse(holder.lastUsedAt) >= LAST_USED_RESOLUTION_MS;
  if (stale && refusal(verified, now) === undefined) await services.store.touchApiKey(digest, new Date(now).toISOString());
  // Remembered from when it was read (a hit does not extend it), so a revocation or suspension elsewhere is seen within the TTL.
  services.admission?.rememberKey(digest, verified, now);
  return verified;
}
