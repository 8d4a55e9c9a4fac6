import { type OpenAPIHono, createRoute } from '@hono/zod-openapi';
import { AccountTrust } from '#core';
import { accountTrust } from '#services';
import { type AppEnv, tenantOf } from '../context.ts';
import { problems } from '../schemas.ts';
import { needs } from '../scopes.ts';

const route = createRoute({
  method: 'get',
  path: '/v1/account-trust',
  operationId: 'getAccountTrust',
  tags: ['Tenants'],
  summary: "What a role in the tenant's AWS account trusts Kiln with",
  description:
    "Kiln's AWS account and the tenant's external ID, which Kiln issued with the tenant and never changes: a role named in an order's account.roleArn must trust that account on the condition sts:ExternalId equals it, as `trustPolicy` says. " +
    "Kiln sends it on every AssumeRole into the tenant's account; an order never names one.",
  ...needs('read-only'),
  responses: {
    200: { description: 'The account to trust and the external ID to require.', content: { 'application/json': { schema: AccountTrust } } },
    ...problems(401, 403),
  },
});

export function registerV1AccountTrustGet(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => c.json(await accountTrust(c.get('services'), tenantOf(c)), 200));
}
