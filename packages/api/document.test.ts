import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '#core';
import { type ApiHarness, startApiHarness } from '../../test/support/api-harness.ts';
import { newApp, openApiDocument } from './index.ts';

let api: ApiHarness;
beforeAll(async () => {
  api = await startApiHarness();
});
afterAll(async () => {
  await api.close();
});

interface Response {
  headers?: Record<string, { required?: boolean }>;
  content?: Record<string, unknown>;
}

describe('the OpenAPI document', () => {
  it('has the closed list of problem codes, and on every operation the 500 and the 503 (with Retry-After) any may send', () => {
    const document = openApiDocument(newApp(api.services)) as unknown as {
      paths: Record<string, Record<string, { responses: Record<string, Response> }>>;
      components: { schemas: { Problem: { properties: { code: { enum: string[] } } } } };
    };
    expect(document.components.schemas.Problem.properties.code.enum.sort()).toEqual(Object.keys(ERROR_CODES).sort());
    for (const [path, operations] of Object.entries(document.paths)) {
      for (const [method, { responses }] of Object.entries(operations)) {
        if (path === '/docs' || path === '/openapi.json') continue;
        const where = `${method.toUpperCase()} ${path}`;
        expect(Object.keys(responses), where).toEqual(expect.arrayContaining(['500', '503']));
        expect(responses['503']?.headers?.['Retry-After']?.required, where).toBe(true);
        // Every problem answer documents the request id it carries.
        for (const [status, response] of Object.entries(responses)) {
          if (response.content?.['application/problem+json'] !== undefined) expect(response.headers?.['x-request-id']?.required, `${where} ${status}`).toBe(true);
        }
      }
    }
  });

  it('documents, on every /v1 operation, the request id and RateLimit fields of its answers, the 429, and the 413 where it takes a body', async () => {
    const document = openApiDocument(newApp(api.services)) as unknown as {
      paths: Record<string, Record<string, { requestBody?: unknown; responses: Record<string, Response> }>>;
    };
    for (const [path, operations] of Object.entries(document.paths)) {
      if (!path.startsWith('/v1/')) continue;
      for (const [method, { requestBody, responses }] of Object.entries(operations)) {
        const where = `${method.toUpperCase()} ${path}`;
        expect(responses['429']?.headers?.['Retry-After']?.required, where).toBe(true);
        expect(Object.keys(responses).includes('413'), where).toBe(requestBody !== undefined);
        for (const [status, response] of Object.entries(responses)) {
          expect(response.headers?.['x-request-id']?.required, `${where} ${status}`).toBe(true);
          // Answers after the rate limiter carry the caller's rate limit; a 401 or a 413 comes before it, and a 500 or
          // 503 may (authentication or the limiter failing), so there the fields are documented, not required.
          const limited = status !== '401' && status !== '413';
          const always = limited && status !== '500' && status !== '503';
          expect(response.headers?.RateLimit !== undefined && response.headers['RateLimit-Policy'] !== undefined, `${where} ${status}`).toBe(limited);
          expect(response.headers?.RateLimit?.required === true && response.headers['RateLimit-Policy']?.required === true, `${where} ${status}`).toBe(always);
        }
      }
    }
    // What the document says about 413 is what a too-large body gets.
    const { apiKey } = await api.newTenant();
    const tooLarge = await api.callRaw('POST', '/v1/clusters', { token: apiKey, body: JSON.stringify({ name: 'x'.repeat(300_000) }) });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.headers.get('content-type')).toBe('application/problem+json');
  });
});
