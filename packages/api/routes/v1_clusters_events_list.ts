import { type OpenAPIHono, createRoute } from '@hono/zod-openapi';
import { ClusterEvent } from '#core';
import { listClusterEvents } from '#services';
import { type AppEnv, tenantOf } from '../context.ts';
import { ClusterIdParam, PageQuery, pageOf, problems } from '../schemas.ts';
import { needs } from '../scopes.ts';

const route = createRoute({
  method: 'get',
  path: '/v1/clusters/{id}/events',
  operationId: 'listClusterEvents',
  tags: ['Clusters'],
  summary: "List a cluster's events",
  description: 'Newest first, kept 90 days: creation, every phase change, and every kubeconfig issued or SSH key handed out.',
  ...needs('read-only'),
  request: { params: ClusterIdParam, query: PageQuery },
  responses: {
    200: { description: 'A page of events.', content: { 'application/json': { schema: pageOf(ClusterEvent, 'ClusterEventPage') } } },
    ...problems(400, 401, 403, 404),
  },
});

export function registerV1ClustersEventsList(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const { limit, cursor } = c.req.valid('query');
    const page = await listClusterEvents(c.get('services'), tenantOf(c), c.req.valid('param').id, { limit, ...(cursor === undefined ? {} : { cursor }) });
    return c.json(page, 200);
  });
}
