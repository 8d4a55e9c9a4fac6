import { type OpenAPIHono, createRoute } from '@hono/zod-openapi';
import { QuotaUsage } from '#core';
import { getQuotaUsage } from '#services';
import { type AppEnv, tenantOf } from '../context.ts';
import { problems } from '../schemas.ts';
import { needs } from '../scopes.ts';

const route = createRoute({
  method: 'get',
  path: '/v1/quotas',
  operationId: 'getQuotas',
  tags: ['Tenants'],
  summary: "The tenant's quotas and what it holds of them",
  description:
    "How many clusters the tenant may hold at once (every phase but Deleted) and how many nodes they may grow to together (each cluster counts its control-plane replicas and each pool's max, or its size when it has none), with what its clusters hold now. " +
    'An order or a change that would go past either is refused with 403 `quota_exceeded` and changes nothing.',
  ...needs('read-only'),
  responses: {
    200: { description: 'The quotas and their use.', content: { 'application/json': { schema: QuotaUsage } } },
    ...problems(401, 403),
  },
});

export function registerV1QuotasGet(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => c.json(await getQuotaUsage(c.get('services'), tenantOf(c)), 200));
}
