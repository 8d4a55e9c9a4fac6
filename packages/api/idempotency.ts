import { Cluster, type Operation, sha256 } from '#core';
import type { IdempotentRequest } from '#services';

/** JSON with object keys sorted, so two bodies that mean the same hash the same. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, inner]) => inner !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, inner]) => `${JSON.stringify(key)}:${canonicalJson(inner)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * Turns an Idempotency-Key header into the request the services
 * store with their write. Keys are per tenant; the request hash covers the
 * method, the path and the body.
 */
export function idempotentRequest(
  key: string | undefined,
  request: { method: string; path: string; body?: unknown },
  respond: (cluster: Cluster, operation: Operation, version: number) => { status: number; headers: Record<string, string>; body: string },
): IdempotentRequest | undefined {
  if (key === undefined) return undefined;
  return {
    keyHash: sha256(key),
    requestHash: sha256(`${request.method} ${request.path}\n${canonicalJson(request.body ?? null)}`),
    respond,
  };
}

/** The stored first response, decoded for the route to send again, marked as a replay. */
export function replayOf(response: { headers: Record<string, string>; body: string }): { cluster: Cluster; headers: Record<string, string> } {
  return { cluster: Cluster.parse(JSON.parse(response.body)), headers: { ...response.headers, 'idempotent-replayed': 'true' } };
}
