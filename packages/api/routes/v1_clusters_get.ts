import { type OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { Cluster } from '#core';
import { clusterView, findCluster } from '#services';
import { type AppEnv, tenantOf } from '../context.ts';
import { etagOf, noneMatch } from '../etag.ts';
import { ClusterIdParam, problems } from '../schemas.ts';
import { needs } from '../scopes.ts';

const route = createRoute({
  method: 'get',
  path: '/v1/clusters/{id}',
  operationId: 'getCluster',
  tags: ['Clusters'],
  summary: 'Get a cluster',
  description:
    'The cluster with its order (`spec`, secrets never included) and its `status`: phase, conditions, endpoint, the operation running on it. The ETag is its version, for If-Match on PATCH and DELETE. ' +
    'Once its deletion finished the cluster answers 404 here and is no longer listed; its events and operations stay readable for 7 days.',
  ...needs('read-only'),
  request: {
    params: ClusterIdParam,
    headers: z.object({
      'if-none-match': z
        .string()
        .max(256)
        .optional()
        .openapi({ param: { name: 'if-none-match', in: 'header' }, description: 'The ETag of the copy the client has: 304 if the cluster has not changed since.' }),
    }),
  },
  responses: {
    200: {
      description: 'The cluster.',
      headers: { ETag: { description: 'The cluster version, for If-Match and If-None-Match.', required: true, schema: { type: 'string' } } },
      content: { 'application/json': { schema: Cluster } },
    },
    304: {
      description: 'Not modified: the copy whose ETag If-None-Match named is current.',
      headers: { ETag: { description: 'The cluster version.', required: true, schema: { type: 'string' } } },
    },
    ...problems(400, 401, 403, 404),
  },
});

export function registerV1ClustersGet(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const record = await findCluster(c.get('services'), tenantOf(c), c.req.valid('param').id);
    const etag = etagOf(record.version);
    if (noneMatch(c.req.valid('header')['if-none-match'], etag)) return c.body(null, 304, { etag });
    return c.json(clusterView(record), 200, { etag });
  });
}
