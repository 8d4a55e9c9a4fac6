import { type OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { issueKubeconfig } from '#services';
import { type AppEnv, tenantOf } from '../context.ts';
import { ClusterIdParam, problems } from '../schemas.ts';
import { needs } from '../scopes.ts';

const Kubeconfig = z
  .object({
    kubeconfig: z.string().describe('kubeconfig YAML: the cluster CA and a client certificate in group kubeadm:cluster-admins.'),
    expiresAt: z.iso.datetime().describe('When the client certificate stops working.'),
  })
  .openapi('Kubeconfig');

const route = createRoute({
  method: 'get',
  path: '/v1/clusters/{id}/kubeconfig',
  operationId: 'getClusterKubeconfig',
  tags: ['Clusters'],
  summary: 'Issue a short-lived admin kubeconfig',
  description: 'Each call signs a new client certificate, valid for `validityMinutes` (default 60). Available once the cluster is Ready (409 before).',
  ...needs('clusters'),
  request: {
    params: ClusterIdParam,
    query: z.object({
      validityMinutes: z.coerce
        .number()
        .int()
        .min(5)
        .max(720)
        .default(60)
        .openapi({ param: { name: 'validityMinutes', in: 'query' }, description: 'Lifetime of the client certificate, 5-720 minutes.' }),
    }),
  },
  responses: {
    200: { description: 'A kubeconfig.', content: { 'application/json': { schema: Kubeconfig } } },
    ...problems(400, 401, 403, 404, 409),
  },
});

export function registerV1ClustersKubeconfigGet(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const issued = await issueKubeconfig(c.get('services'), tenantOf(c), c.req.valid('param').id, c.req.valid('query').validityMinutes);
    return c.json(issued, 200, { 'cache-control': 'no-store' });
  });
}
