import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiHarness, startApiHarness } from '../../test/support/api-harness.ts';
import { CORS_EXPOSED_HEADERS, newApp } from './app.ts';

let api: ApiHarness;
beforeAll(async () => {
  api = await startApiHarness();
});
afterAll(async () => {
  await api.close();
});

const PORTAL = 'https://portal.example.com';

function preflight(app: ReturnType<typeof newApp>, origin: string) {
  return app.request('/v1/clusters', {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, idempotency-key' },
  });
}

describe('CORS for browser portals', () => {
  it('answers a preflight from an allowed origin without authentication, and lets the portal read the headers it needs', async () => {
    const app = newApp({ ...api.services, corsOrigins: [PORTAL] });
    const answer = await preflight(app, PORTAL);
    expect(answer.status).toBe(204);
    expect(answer.headers.get('access-control-allow-origin')).toBe(PORTAL);
    expect(answer.headers.get('access-control-allow-headers')?.split(',').map((header) => header.trim())).toEqual(['authorization', 'content-type', 'if-match', 'idempotency-key']);
    expect(answer.headers.get('access-control-allow-methods')).toContain('PATCH');

    const { apiKey } = await api.newTenant();
    const listed = await app.request('/v1/clusters', { headers: { origin: PORTAL, authorization: `Bearer ${apiKey}` } });
    expect(listed.status).toBe(200);
    expect(listed.headers.get('access-control-allow-origin')).toBe(PORTAL);
    expect(listed.headers.get('access-control-expose-headers')?.split(',').map((header) => header.trim())).toEqual(CORS_EXPOSED_HEADERS);
    expect(CORS_EXPOSED_HEADERS).toEqual(['ETag', 'Location', 'x-request-id', 'Idempotent-Replayed', 'Retry-After', 'RateLimit', 'RateLimit-Policy', 'Operation-Location']);
    // An answer without a valid key is still a problem document, and still readable by the portal.
    const refused = await app.request('/v1/clusters', { headers: { origin: PORTAL } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe(PORTAL);
  });

  it('allows no other origin, and none at all by default', async () => {
    const configured = await preflight(newApp({ ...api.services, corsOrigins: [PORTAL] }), 'https://evil.example.net');
    expect(configured.headers.get('access-control-allow-origin')).toBeNull();
    const unconfigured = await preflight(newApp(api.services), PORTAL);
    expect(unconfigured.headers.get('access-control-allow-origin')).toBeNull();
  });
});
