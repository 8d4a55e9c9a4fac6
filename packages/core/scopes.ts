import { z } from 'zod';

/**
 * What an API key may do. Every key may read (`read-only`); each of the others adds the changes to one kind of
 * resource. Reading a credential that grants access to a cluster (its admin kubeconfig, its SSH private key) is a
 * change in all but name, so it needs `clusters`. Each operation names the one scope it needs (the API's document
 * shows it as the scope of the operation's security requirement); `admin` is the operator's token, never a key's.
 */
export const API_KEY_SCOPES = ['read-only', 'clusters', 'webhooks', 'keys'] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];
export const ApiKeyScope = z.enum(API_KEY_SCOPES);

/** What an operation may require: a key's scope, or the admin token. */
export type OperationScope = ApiKeyScope | 'admin';
export const ADMIN_SCOPE = 'admin';

/** The longest a key may live: a year, so a forgotten key does not stay valid for ever (the first key does not expire). */
export const MAX_API_KEY_LIFETIME_MS = 365 * 24 * 3_600_000;

/** A key's scopes as kept and shown: `read-only` (which every key holds) first, each scope once, in the list's order. */
export function normalizedScopes(scopes: readonly ApiKeyScope[]): ApiKeyScope[] {
  return API_KEY_SCOPES.filter((scope) => scope === 'read-only' || scopes.includes(scope));
}

/** The scopes of `wanted` that `held` lacks. */
export function missingScopes(held: readonly ApiKeyScope[], wanted: readonly ApiKeyScope[]): ApiKeyScope[] {
  return normalizedScopes(wanted).filter((scope) => !held.includes(scope));
}
