import { type OpenAPIHono, createRoute } from '@hono/zod-openapi';
import { Operation } from '#core';
import { listClusterOperations } from '#services';
import { type AppEnv, tenantOf } from '../context.ts';
import { ClusterIdParam, PageQuery, pageOf, problems } from '../schemas.ts';
import { needs } from '../scopes.ts';

const route = createRoute({
  method: 'get',
  path: '/v1/clusters/{id}/operations',
  operationId: 'listClusterOperations',
  tags: ['Operations'],
  summary: "List a cluster's operations",
  description: 'Newest first.',
  ...needs('read-only'),
  request: { params: ClusterIdParam, query: PageQuery },
  responses: {
    200: { description: 'A page of operations.', content: { 'application/json': { schema: pageOf(Operation, 'OperationPage') } } },
    ...problems(400, 401, 403, 404),
  },
});

export function registerV1ClustersOperationsList(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const { limit, cursor } = c.req.valid('query');
    const page = await listClusterOperations(c.get('services'), tenantOf(c), c.req.valid('param').id, {
      limit,
      ...(cursor === undefined ? {} : { cursor }),
    });
    return c.json(page, 200);
  });
}
