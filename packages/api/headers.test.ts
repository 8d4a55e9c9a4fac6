import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Problem } from '#core';
import { expectProblem } from '../../test/support/api.ts';
import { type ApiHarness, startApiHarness } from '../../test/support/api-harness.ts';

let api: ApiHarness;
beforeAll(async () => {
  api = await startApiHarness();
});
afterAll(async () => {
  await api.close();
});

const SECURITY = {
  'x-content-type-options': 'nosniff',
  'strict-transport-security': 'max-age=63072000; includeSubDomains',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
};
const headersOf = (response: { headers: Headers }, names: readonly string[]) => Object.fromEntries(names.map((name) => [name, response.headers.get(name)]));

describe('every answer', () => {
  it('carries the security headers, errors too, and Cache-Control: reads revalidate, the rest is not kept', async () => {
    const tenant = await api.newTenant();
    const list = await api.call('GET', '/v1/clusters', { token: tenant.apiKey });
    expect(list.status).toBe(200);
    expect(headersOf(list, Object.keys(SECURITY))).toEqual(SECURITY);
    expect(list.headers.get('cache-control')).toBe('private, no-cache');

    const refused = await api.call<Problem>('GET', '/v1/clusters');
    expectProblem(refused, 401, 'unauthorized');
    expect(headersOf(refused, Object.keys(SECURITY))).toEqual(SECURITY);
    expect(refused.headers.get('cache-control')).toBe('no-store');
    expect(refused.headers.get('x-request-id')).toBe(refused.body.requestId);
  });

  it('answers a method a path does not take with 405 and Allow, and a path it does not serve with 404', async () => {
    const tenant = await api.newTenant();
    const wrong = await api.call<Problem>('PUT', '/v1/clusters', { token: tenant.apiKey, body: {} });
    expectProblem(wrong, 405, 'method_not_allowed');
    expect(wrong.headers.get('allow')).toBe('GET, POST');
    expect(wrong.body.detail).toBe('PUT is not allowed on /v1/clusters; it takes GET, POST.');
    const item = await api.call<Problem>('POST', '/v1/clusters/cls_01jd8x7t5k3m4n5p6q7r8s9t0v', { token: tenant.apiKey, body: {} });
    expectProblem(item, 405, 'method_not_allowed');
    expect(item.headers.get('allow')).toBe('DELETE, GET, PATCH');
    expectProblem(await api.call<Problem>('GET', '/v1/nothing-here', { token: tenant.apiKey }), 404, 'not_found');
  });
});
