import { type OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { Cluster } from '#core';
import { updateClusterSpec } from '#services';
import { type AppEnv, tenantOf } from '../context.ts';
import { parseIfMatch } from '../etag.ts';
import { idempotentRequest, replayOf } from '../idempotency.ts';
import { ClusterIdParam, changeHeaders, problems } from '../schemas.ts';

const ClusterPatch = z
  .record(z.string(), z.unknown())
  .openapi('ClusterPatch', {
    description:
      'A JSON merge patch (RFC 7386) of the order. podSecurity, certManager, extensions, maintenance and nodeHealth can change; other fields are fixed at creation.',
    example: { extensions: { intrusionDetection: { enabled: true } } },
  });

const route = createRoute({
  method: 'patch',
  path: '/v1/clusters/{id}',
  operationId: 'updateCluster',
  tags: ['Clusters'],
  summary: "Change a cluster's order",
  description:
    'Merges the patch into the order, validates the result like a new order and starts the update workflow (add-ons re-applied, what was turned off removed). ' +
    'Replies 202 with the cluster in phase Updating, or 200 when the patch changes nothing. One operation runs per cluster at a time.',
  security: [{ bearer: [] }],
  request: {
    params: ClusterIdParam,
    headers: changeHeaders('Apply only if the cluster still has this ETag (else 412).'),
    body: {
      required: true,
      content: { 'application/merge-patch+json': { schema: ClusterPatch }, 'application/json': { schema: ClusterPatch } },
    },
  },
  responses: {
    200: { description: 'Nothing to change.', content: { 'application/json': { schema: Cluster } } },
    202: {
      description: 'The update has started.',
      headers: {
        Location: { description: 'The update operation.', schema: { type: 'string' } },
      },
      content: { 'application/json': { schema: Cluster } },
    },
    ...problems(400, 401, 403, 404, 409, 412, 415, 422),
  },
});

export function registerV1ClustersUpdate(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const { id } = c.req.valid('param');
    const headers = c.req.valid('header');
    const ifMatch = headers['if-match'];
    const patch = c.req.valid('json');
    const respond = (cluster: Cluster) => ({
      status: 202,
      headers: {
        'content-type': 'application/json',
        ...(cluster.status.activeOperationId === undefined ? {} : { location: `/v1/operations/${cluster.status.activeOperationId}` }),
      },
      body: JSON.stringify(cluster),
    });
    const request = idempotentRequest(headers['idempotency-key'], { method: 'PATCH', path: `/v1/clusters/${id}`, body: patch }, respond);
    const outcome = await updateClusterSpec(c.get('services'), tenantOf(c), id, patch, {
      ...(ifMatch === undefined ? {} : { ifMatchVersion: parseIfMatch(ifMatch) }),
      ...(request === undefined ? {} : { request }),
    });
    if (outcome.kind === 'replay') {
      const replayed = replayOf(outcome.response);
      return c.json(replayed.cluster, 202, replayed.headers);
    }
    if (outcome.value.status.phase !== 'Updating') return c.json(outcome.value, 200);
    return c.json(outcome.value, 202, respond(outcome.value).headers);
  });
}
