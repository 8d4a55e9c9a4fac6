import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Problem } from '#core';
import { expectProblem } from '../../test/support/api.ts';
import { type ApiHarness, startApiHarness } from '../../test/support/api-harness.ts';
import { MAX_JSON_DEPTH, jsonDepth } from './json-depth.ts';

let api: ApiHarness;
beforeAll(async () => {
  api = await startApiHarness();
});
afterAll(async () => {
  await api.close();
});

const nested = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;

describe('the JSON depth limit', () => {
  it('counts nesting without parsing, skipping brackets inside strings', () => {
    expect(jsonDepth('{"a":[1,{"b":2}]}')).toBe(3);
    expect(jsonDepth('{"a":"[[[{{{\\"[["}')).toBe(1);
    expect(jsonDepth('[]')).toBe(1);
    expect(jsonDepth('"just a string"')).toBe(0);
    expect(jsonDepth(nested(5000))).toBe(MAX_JSON_DEPTH + 1);
  });

  it('answers a PATCH nested 5,000 levels deep with a 400 that says so, for a cluster that exists or not, with or without an Idempotency-Key', async () => {
    const tenant = await api.newTenant();
    for (const headers of [{}, { 'idempotency-key': 'deep-1' }] as Record<string, string>[]) {
      const response = await api.callRaw('PATCH', '/v1/clusters/cls_01jd8x7t5k3m4n5p6q7r8s9t0v', {
        token: tenant.apiKey,
        body: nested(5000),
        headers: { 'content-type': 'application/merge-patch+json', ...headers },
      });
      expectProblem(response, 400, 'malformed_request');
      expect(response.text).toContain(`deeper than ${MAX_JSON_DEPTH} levels`);
    }
    // A body at the limit is read as usual (here: a field the patch does not know).
    const shallow = await api.call<Problem>('POST', '/v1/api-keys', { token: tenant.apiKey, body: JSON.parse(nested(MAX_JSON_DEPTH)) as unknown });
    expectProblem(shallow, 400, 'validation_failed');
  });
});
