import { type OpenAPIHono, createRoute } from '@hono/zod-openapi';
import { KilnError, TenantCreated, TenantOrder } from '#core';
import { createTenant } from '#services';
import type { AppEnv } from '../context.ts';
import { problems } from '../schemas.ts';
import { needs } from '../scopes.ts';

const route = createRoute({
  method: 'post',
  path: '/v1/tenants',
  operationId: 'createTenant',
  tags: ['Tenants'],
  summary: 'Create a tenant (admin)',
  description: 'Creates a tenant and returns its first API key, which holds every scope and does not expire. The key is shown only in this response; Kiln stores its hash.',
  ...needs('admin'),
  request: { body: { required: true, content: { 'application/json': { schema: TenantOrder } } } },
  responses: {
    201: { description: 'The tenant, with its API key.', content: { 'application/json': { schema: TenantCreated } } },
    ...problems(400, 401, 403, 415),
  },
});

export function registerV1TenantsCreate(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    if (c.get('principal').kind !== 'admin') throw new KilnError('forbidden', 'Only the admin token may create tenants.');
    const order = c.req.valid('json');
    const tenant = await createTenant(c.get('services'), order.name, order.quotas);
    return c.json(tenant, 201, { 'cache-control': 'no-store' });
  });
}
