import { type OpenAPIHono, createRoute } from '@hono/zod-openapi';
import { Tenant } from '#core';
import { resumeTenant, suspendTenant } from '#services';
import type { AppEnv } from '../context.ts';
import { needs } from '../scopes.ts';
import { TenantIdParam, problems } from '../schemas.ts';

const suspend = createRoute({
  method: 'put',
  path: '/v1/tenants/{id}/suspension',
  operationId: 'suspendTenant',
  tags: ['Tenants'],
  summary: 'Suspend a tenant (admin)',
  description:
    'Every request with any of the tenant\'s API keys gets 401 (a problem saying the tenant is suspended): at once on the API instance that answers this, within 30 s on the others. ' +
    'Its clusters, their workflows and its webhooks go on; suspending a suspended tenant changes nothing (`suspendedAt` stays).',
  ...needs('admin'),
  request: { params: TenantIdParam },
  responses: {
    200: { description: 'The tenant, suspended.', content: { 'application/json': { schema: Tenant } } },
    ...problems(400, 401, 403, 404),
  },
});

const resume = createRoute({
  method: 'delete',
  path: '/v1/tenants/{id}/suspension',
  operationId: 'resumeTenant',
  tags: ['Tenants'],
  summary: 'Resume a suspended tenant (admin)',
  description: "The tenant's keys work again: at once on the API instance that answers this, within 30 s on the others. Resuming a tenant that is not suspended changes nothing.",
  ...needs('admin'),
  request: { params: TenantIdParam },
  responses: {
    200: { description: 'The tenant, no longer suspended.', content: { 'application/json': { schema: Tenant } } },
    ...problems(400, 401, 403, 404),
  },
});

export function registerV1TenantsSuspension(app: OpenAPIHono<AppEnv>): void {
  app.openapi(suspend, async (c) => c.json(await suspendTenant(c.get('services'), c.req.valid('param').id), 200));
  app.openapi(resume, async (c) => c.json(await resumeTenant(c.get('services'), c.req.valid('param').id), 200));
}
