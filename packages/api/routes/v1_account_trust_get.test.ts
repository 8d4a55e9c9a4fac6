import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Problem } from '#core';
import { expectProblem } from '../../../test/support/api.ts';
import { type ApiHarness, startApiHarness } from '../../../test/support/api-harness.ts';

let api: ApiHarness;
beforeAll(async () => {
  api = await startApiHarness();
});
afterAll(async () => {
  await api.close();
});

interface AccountTrust {
  kilnAccountId: string;
  externalId: string;
  trustPolicy: string;
}

describe('GET /v1/account-trust', () => {
  it("shows Kiln's account and the external ID Kiln issued with the tenant, the same on every call, in a trust policy", async () => {
    const created = await api.call<{ apiKey: string; externalId: string }>('POST', '/v1/tenants', { token: api.adminToken, body: { name: 'trusting' } });
    expect(created.status).toBe(201);
    const first = await api.call<AccountTrust>('GET', '/v1/account-trust', { token: created.body.apiKey });
    expect(first.status).toBe(200);
    expect(first.body.kilnAccountId).toBe('000000000000');
    expect(first.body.externalId).toBe(created.body.externalId);
    expect(first.body.externalId).toMatch(/^kiln-[A-Za-z0-9_-]{32}$/);
    expect(JSON.parse(first.body.trustPolicy)).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { AWS: 'arn:aws:iam::000000000000:root' },
          Action: 'sts:AssumeRole',
          Condition: { StringEquals: { 'sts:ExternalId': first.body.externalId } },
        },
      ],
    });
    const again = await api.call<AccountTrust>('GET', '/v1/account-trust', { token: created.body.apiKey });
    expect(again.body.externalId).toBe(first.body.externalId);
  });

  it('gives every tenant an external ID of its own', async () => {
    const [one, two] = await Promise.all([api.newTenant(), api.newTenant()]);
    const [first, second] = await Promise.all([
      api.call<AccountTrust>('GET', '/v1/account-trust', { token: one.apiKey }),
      api.call<AccountTrust>('GET', '/v1/account-trust', { token: two.apiKey }),
    ]);
    expect(first.body.externalId).not.toBe(second.body.externalId);
  });

  it('answers the admin token with 403: the external ID is a tenant’s', async () => {
    const response = await api.call<Problem>('GET', '/v1/account-trust', { token: api.adminToken });
    expectProblem(response, 403, 'forbidden');
  });
});
