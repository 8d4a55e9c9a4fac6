import { type OpenAPIHono, createRoute } from '@hono/zod-openapi';
import { ClusterNodeList } from '#core';
import { listClusterNodes } from '#services';
import { type AppEnv, tenantOf } from '../context.ts';
import { ClusterIdParam, problems } from '../schemas.ts';
import { needs } from '../scopes.ts';

const route = createRoute({
  method: 'get',
  path: '/v1/clusters/{id}/nodes',
  operationId: 'listClusterNodes',
  tags: ['Clusters'],
  summary: "List a cluster's machines and their health",
  description:
    'Every machine of the control plane and the pools, as the health poller last saw it (about once a minute): its Node, instance, zone, kubelet version, and health ' +
    '(Healthy; Watching while not Ready for less than nodeHealth.unhealthyTimeoutMinutes, or not registered within nodeStartupTimeoutMinutes; Unhealthy after). ' +
    'Each machine Kiln has remediated names its newest remediate-node operation in `lastRemediation`. ' +
    '`remediationPaused` says why unhealthy machines are left alone, if they are.',
  ...needs('read-only'),
  request: { params: ClusterIdParam },
  responses: {
    200: { description: "The cluster's machines.", content: { 'application/json': { schema: ClusterNodeList } } },
    ...problems(400, 401, 403, 404),
  },
});

export function registerV1ClustersNodesList(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => c.json(await listClusterNodes(c.get('services'), tenantOf(c), c.req.valid('param').id), 200));
}
