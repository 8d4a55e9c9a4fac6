import { type OpenAPIHono, createRoute } from '@hono/zod-openapi';
import { Cluster, ClusterSpec } from '#core';
import { orderCluster } from '#services';
import { type AppEnv, tenantOf } from '../context.ts';
import { OPERATION_RETRY_AFTER_SECONDS, etagOf } from '../etag.ts';
import { idempotentRequest, replayOf } from '../idempotency.ts';
import { IdempotencyHeaders, problems } from '../schemas.ts';
import { needs } from '../scopes.ts';

const route = createRoute({
  method: 'post',
  path: '/v1/clusters',
  operationId: 'createCluster',
  tags: ['Clusters'],
  summary: 'Order a cluster',
  description:
    'Validates the order, records it and starts provisioning. Replies 202 at once; follow `status.phase` on the cluster or the operation in `status.activeOperationId`. ' +
    'With an Idempotency-Key the order is written together with its response in one transaction, so a retry (even one racing the first request) gets the same response.',
  ...needs('clusters'),
  request: {
    headers: IdempotencyHeaders,
    body: { required: true, content: { 'application/json': { schema: ClusterSpec } } },
  },
  responses: {
    202: {
      description: 'Accepted; provisioning has started.',
      headers: {
        Location: { description: 'The URL of the new cluster.', required: true, schema: { type: 'string' } },
        ETag: { description: 'The cluster version.', required: true, schema: { type: 'string' } },
        'Operation-Location': { description: 'The provision operation, to follow its steps.', required: true, schema: { type: 'string' } },
        'Retry-After': { description: 'Seconds to wait before looking at the operation.', required: true, schema: { type: 'integer' } },
      },
      content: { 'application/json': { schema: Cluster } },
    },
    ...problems(400, 401, 403, 409, 415, 422),
  },
});

export function registerV1ClustersCreate(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const tenantId = tenantOf(c);
    const order = c.req.valid('json');
    const raw: unknown = await c.req.json();
    const respond = (cluster: Cluster) => ({
      status: 202,
      headers: {
        'content-type': 'application/json',
        location: `/v1/clusters/${cluster.id}`,
        etag: etagOf(1),
        ...(cluster.status.activeOperationId === undefined ? {} : { 'operation-location': `/v1/operations/${cluster.status.activeOperationId}` }),
        'retry-after': String(OPERATION_RETRY_AFTER_SECONDS),
      },
      body: JSON.stringify(cluster),
    });
    const request = idempotentRequest(c.req.valid('header')['idempotency-key'], { method: 'POST', path: '/v1/clusters', body: raw }, respond);
    const outcome = await orderCluster(c.get('services'), tenantId, order, request);
    if (outcome.kind === 'replay') {
      const replayed = replayOf(outcome.response);
      return c.json(replayed.cluster, 202, replayed.headers);
    }
    const response = respond(outcome.value);
    return c.json(outcome.value, 202, response.headers);
  });
}
