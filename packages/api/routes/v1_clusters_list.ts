import { type OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { Cluster } from '#core';
import { listClusters } from '#services';
import { type AppEnv, tenantOf } from '../context.ts';
import { PageQuery, pageOf, problems } from '../schemas.ts';
import { needs } from '../scopes.ts';

const route = createRoute({
  method: 'get',
  path: '/v1/clusters',
  operationId: 'listClusters',
  tags: ['Clusters'],
  summary: 'List clusters',
  description: 'Oldest first; a cluster whose deletion finished is not listed. A page may hold fewer than `limit` clusters while `nextCursor` says there are more.',
  ...needs('read-only'),
  request: {
    query: PageQuery.extend({
      name: z
        .string()
        .max(63)
        .optional()
        .openapi({ param: { name: 'name', in: 'query' }, description: 'Only the cluster with this name (names are unique in a tenant): a list of one, or none.' }),
    }),
  },
  responses: {
    200: { description: 'A page of clusters.', content: { 'application/json': { schema: pageOf(Cluster, 'ClusterPage') } } },
    ...problems(400, 401, 403),
  },
});

export function registerV1ClustersList(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const { limit, cursor, name } = c.req.valid('query');
    const page = await listClusters(c.get('services'), tenantOf(c), { limit, ...(cursor === undefined ? {} : { cursor }), ...(name === undefined ? {} : { name }) });
    return c.json(page, 200);
  });
}
