import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LogFields, Logger, Metrics } from '#core';
import { listApiKeys } from '#services';
import { type ApiHarness, startApiHarness } from '../../test/support/api-harness.ts';
import { newApp } from './app.ts';

let api: ApiHarness;
beforeAll(async () => {
  api = await startApiHarness();
});
afterAll(async () => {
  await api.close();
});

/** A logger that keeps its lines (with the fields of its parents) and metrics that keep what is flushed. */
function recording() {
  const lines: { message: string; fields: LogFields }[] = [];
  const logger = (base: LogFields): Logger => ({
    child: (fields) => logger({ ...base, ...fields }),
    debug: (message, fields) => lines.push({ message, fields: { ...base, ...fields } }),
    info: (message, fields) => lines.push({ message, fields: { ...base, ...fields } }),
    warn: (message, fields) => lines.push({ message, fields: { ...base, ...fields } }),
    error: (message, fields) => lines.push({ message, fields: { ...base, ...fields } }),
  });
  const flushed: Record<string, number>[] = [];
  let pending: Record<string, number> = {};
  const metrics: Metrics = {
    count: (name, value = 1) => {
      pending[name] = (pending[name] ?? 0) + value;
    },
    milliseconds: (name, value) => {
      pending[name] = value;
    },
    flush: () => {
      flushed.push(pending);
      pending = {};
      return Promise.resolve();
    },
  };
  return { lines, flushed, log: logger({}), metrics };
}

describe('the access log and the request metrics', () => {
  it('writes one line per request, without the query or any header, and no metric API Gateway already has', async () => {
    const { lines, flushed, log, metrics } = recording();
    const app = newApp({ ...api.services, log, metrics });
    const { id: tenantId, apiKey } = await api.newTenant();
    const [key] = await listApiKeys(api.services, tenantId);
    const keyId = key?.id;

    const listed = await app.request('/v1/clusters?name=secret-ish&limit=5', { headers: { authorization: `Bearer ${apiKey}` } });
    const missing = await app.request('/v1/clusters/cls_01jd8x7t5k3m4n5p6q7r8s9t0v', { headers: { authorization: `Bearer ${apiKey}` } });
    const anonymous = await app.request('/v1/clusters');

    const requests = lines.filter((line) => line.message === 'request');
    expect(requests.map((line) => line.fields)).toEqual([
      { requestId: listed.headers.get('x-request-id'), method: 'GET', path: '/v1/clusters', status: 200, durationMs: expect.any(Number), caller: 'tenant', tenantId, keyId },
      { requestId: missing.headers.get('x-request-id'), method: 'GET', path: '/v1/clusters/cls_01jd8x7t5k3m4n5p6q7r8s9t0v', status: 404, durationMs: expect.any(Number), caller: 'tenant', tenantId, keyId },
      { requestId: anonymous.headers.get('x-request-id'), method: 'GET', path: '/v1/clusters', status: 401, durationMs: expect.any(Number) },
    ]);
    expect(JSON.stringify(lines)).not.toContain(apiKey);
    expect(JSON.stringify(lines)).not.toContain('secret-ish');
    // API Gateway's own metrics count these; Kiln writes none for them.
    expect(flushed).toEqual([]);
  });

  it('counts a refusal past the rate limit', async () => {
    const { flushed, log, metrics } = recording();
    const app = newApp({ ...api.services, log, metrics, rateLimit: { perSecond: 0.1, burst: 1 } });
    const { apiKey } = await api.newTenant();
    await app.request('/v1/clusters', { headers: { authorization: `Bearer ${apiKey}` } });
    await app.request('/v1/clusters', { headers: { authorization: `Bearer ${apiKey}` } });
    expect(flushed).toEqual([{ RateLimited: 1 }]);
  });

  it("gives the request's log lines its id, and the operation it starts too, so its workflow's steps log it", async () => {
    const { lines, log, metrics } = recording();
    const app = newApp({ ...api.services, log, metrics });
    const { apiKey } = await api.newTenant();
    const ordered = await app.request('/v1/clusters', {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', 'x-request-id': 'portal-order-7' },
      body: JSON.stringify({ name: 'traced', region: 'eu-central-1', nodePools: [{ name: 'default', size: 1 }] }),
    });
    expect(ordered.status).toBe(202);
    expect(ordered.headers.get('x-request-id')).toBe('portal-order-7');
    const operationUrl = ordered.headers.get('operation-location') ?? '';
    const operation = (await (await app.request(operationUrl, { headers: { authorization: `Bearer ${apiKey}` } })).json()) as { requestId?: string };
    expect(operation.requestId).toBe('portal-order-7');
    // The workflow could not start here (no Step Functions): that warning is logged under the request's id.
    expect(lines.find((line) => line.message === 'workflow start deferred to recovery')?.fields).toMatchObject({ requestId: 'portal-order-7' });
  });
});
