import { type OpenAPIHono, createRoute } from '@hono/zod-openapi';
import { Cluster } from '#core';
import { clusterView, findCluster } from '#services';
import { type AppEnv, tenantOf } from '../context.ts';
import { etagOf } from '../etag.ts';
import { ClusterIdParam, problems } from '../schemas.ts';

const route = createRoute({
  method: 'get',
  path: '/v1/clusters/{id}',
  operationId: 'getCluster',
  tags: ['Clusters'],
  summary: 'Get a cluster',
  description: 'The cluster with its order (`spec`, secrets never included) and its `status`: phase, conditions, endpoint, the operation running on it. The ETag is its version, for If-Match on PATCH and DELETE.',
  security: [{ bearer: [] }],
  request: { params: ClusterIdParam },
  responses: {
    200: {
      description: 'The cluster.',
      headers: { ETag: { description: 'The cluster version, for If-Match.', schema: { type: 'string' } } },
      content: { 'application/json': { schema: Cluster } },
    },
    ...problems(400, 401, 403, 404),
  },
});

export function registerV1ClustersGet(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const record = await findCluster(c.get('services'), tenantOf(c), c.req.valid('param').id);
    return c.json(clusterView(record), 200, { etag: etagOf(record.version) });
  });
}
