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
});
