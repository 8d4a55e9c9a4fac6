import { type OpenAPIHono, createRoute } from '@hono/zod-openapi';
import { Cluster } from '#core';
import { deleteCluster } from '#services';
import { type AppEnv, tenantOf } from '../context.ts';
import { OPERATION_RETRY_AFTER_SECONDS, etagOf, ifMatchOption } from '../etag.ts';
import { idempotentRequest, replayOf } from '../idempotency.ts';
import { ClusterIdParam, changeHeaders, problems } from '../schemas.ts';
import { needs } from '../scopes.ts';

const route = createRoute({
  method: 'delete',
  path: '/v1/clusters/{id}',
  operationId: 'deleteCluster',
  tags: ['Clusters'],
  summary: 'Delete a cluster',
  description:
    'Starts deprovisioning and replies 202 with the cluster in phase Deleting; `Location` points at the deprovision operation. ' +
    'Deleting a cluster that is already Deleting answers 202 with its current state; once its deletion finished it answers 404. A cluster with another operation running answers 409.',
  ...needs('clusters'),
  request: {
    params: ClusterIdParam,
    headers: changeHeaders('Delete only if the cluster still has this ETag.'),
  },
  responses: {
    202: {
      description: 'Deprovisioning has started.',
      headers: {
        Location: { description: 'The deprovision operation (absent when the cluster was already being deleted).', schema: { type: 'string' } },
        ETag: { description: 'The cluster version after this change.', required: true, schema: { type: 'string' } },
        'Operation-Location': { description: 'The same operation, as long-running-operation clients look for it.', schema: { type: 'string' } },
        'Retry-After': { description: 'Seconds to wait before looking again.', required: true, schema: { type: 'integer' } },
      },
      content: { 'application/json': { schema: Cluster } },
    },
    ...problems(400, 401, 403, 404, 409, 412, 422),
  },
});

export function registerV1ClustersDelete(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const { id } = c.req.valid('param');
    const headers = c.req.valid('header');
    const ifMatch = headers['if-match'];
    const respond = (cluster: Cluster, _operation: unknown, version: number) => {
      const operationId = cluster.status.activeOperationId;
      return {
        status: 202,
        headers: {
          'content-type': 'application/json',
          etag: etagOf(version),
          ...(operationId === undefined ? {} : { location: `/v1/operations/${operationId}`, 'operation-location': `/v1/operations/${operationId}` }),
          'retry-after': String(OPERATION_RETRY_AFTER_SECONDS),
        },
        body: JSON.stringify(cluster),
      };
    };
    const request = idempotentRequest(headers['idempotency-key'], { method: 'DELETE', path: `/v1/clusters/${id}` }, respond);
    const outcome = await deleteCluster(c.get('services'), tenantOf(c), id, {
      ...ifMatchOption(ifMatch),
      ...(request === undefined ? {} : { request }),
    });
    if (outcome.kind === 'replay') {
      const replayed = replayOf(outcome.response);
      return c.json(replayed.cluster, 202, replayed.headers);
    }
    return c.json(outcome.value, 202, respond(outcome.value, undefined, outcome.version).headers);
  });
}

