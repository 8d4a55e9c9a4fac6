import { type OpenAPIHono, createRoute } from '@hono/zod-openapi';
import type { ZodError } from 'zod';
import { Cluster, ClusterPatch, FIXED_AT_CREATION, IMMUTABLE_ORDER_FIELDS, UnprocessableError, immutableMembersOf, isPartlyMutable, isRecord, jsonPointer, validationErrorOf } from '#core';
import { updateClusterSpec } from '#services';
import { type AppEnv, tenantOf } from '../context.ts';
import { OPERATION_RETRY_AFTER_SECONDS, etagOf, ifMatchOption } from '../etag.ts';
import { idempotentRequest, replayOf } from '../idempotency.ts';
import { ClusterIdParam, changeHeaders, problems } from '../schemas.ts';
import { needs } from '../scopes.ts';

/** Where a patch sets something: each leaf member of its objects (a list or a scalar is one leaf). */
function leafPaths(value: unknown, path: string[]): string[][] {
  if (!isRecord(value) || Object.keys(value).length === 0) return [path];
  return Object.entries(value).flatMap(([member, inner]) => leafPaths(inner, [...path, member]));
}

/**
 * A patch naming only order fields fixed at creation is well-formed but cannot be done: 422 naming each member it
 * tried to set (`/network/vpcCidr`, `/controlPlane/replicas`). Any other unknown or malformed member is the patch's
 * shape: 400, as for an order.
 */
function patchProblem(error: ZodError, body: unknown): Error {
  // Each member the schema did not know, with where it sits.
  const unknown = error.issues.flatMap((issue) => (issue.code === 'unrecognized_keys' ? issue.keys.map((key) => [...issue.path.map(String), key]) : [[]]));
  const fixedAtCreation = (path: string[]): boolean => {
    const [field = '', member, ...deeper] = path;
    if (member === undefined) return IMMUTABLE_ORDER_FIELDS.includes(field);
    return deeper.length === 0 && isPartlyMutable(field) && immutableMembersOf(field).includes(member);
  };
  if (!isRecord(body) || !unknown.every((path) => path.length > 0 && fixedAtCreation(path))) return validationErrorOf(error, 'json', 'The patch');
  const valueAt = (path: string[]): unknown => path.reduce<unknown>((value, key) => (isRecord(value) ? value[key] : undefined), body);
  return new UnprocessableError(
    FIXED_AT_CREATION,
    unknown
      .flatMap((path) => leafPaths(valueAt(path), path))
      .map((path) => jsonPointer(path))
      .sort()
      .map((pointer) => ({ pointer, detail: 'cannot change after the cluster is created' })),
  );
}

const route = createRoute({
  method: 'patch',
  path: '/v1/clusters/{id}',
  operationId: 'updateCluster',
  tags: ['Clusters'],
  summary: "Change a cluster's order",
  description:
    'Merges the patch into the order, validates the result like a new order and starts the update workflow: a change of network.apiAllowedCidrs or ssh.allowedCidrs first runs the infrastructure again (the security group rules change in place, nothing else is replaced), then the add-ons are re-applied (what was turned off removed) and verified. ' +
    'Replies 202 with the cluster in phase Updating, or 200 when the patch changes nothing. One operation runs per cluster at a time.',
  ...needs('clusters'),
  request: {
    params: ClusterIdParam,
    headers: changeHeaders('Apply only if the cluster still has this ETag (else 412).'),
    body: {
      required: true,
      content: { 'application/merge-patch+json': { schema: ClusterPatch }, 'application/json': { schema: ClusterPatch } },
    },
  },
  responses: {
    200: {
      description: 'Nothing to change.',
      headers: { ETag: { description: 'The cluster version.', required: true, schema: { type: 'string' } } },
      content: { 'application/json': { schema: Cluster } },
    },
    202: {
      description: 'The update has started.',
      headers: {
        Location: { description: 'The update operation.', required: true, schema: { type: 'string' } },
        ETag: { description: 'The cluster version after this change, for the next If-Match.', required: true, schema: { type: 'string' } },
        'Operation-Location': { description: 'The same operation, as long-running-operation clients look for it.', required: true, schema: { type: 'string' } },
        'Retry-After': { description: 'Seconds to wait before looking at the operation.', required: true, schema: { type: 'integer' } },
      },
      content: { 'application/json': { schema: Cluster } },
    },
    ...problems(400, 401, 403, 404, 409, 412, 415, 422),
  },
});

export function registerV1ClustersUpdate(app: OpenAPIHono<AppEnv>): void {
  app.openapi(
    route,
    async (c) => {
      const { id } = c.req.valid('param');
      const headers = c.req.valid('header');
      const ifMatch = headers['if-match'];
      const patch = c.req.valid('json');
      const respond = (cluster: Cluster, _operation: unknown, version: number) => ({
        status: 202,
        headers: {
          'content-type': 'application/json',
          etag: etagOf(version),
          ...(cluster.status.activeOperationId === undefined
            ? {}
            : { location: `/v1/operations/${cluster.status.activeOperationId}`, 'operation-location': `/v1/operations/${cluster.status.activeOperationId}` }),
          'retry-after': String(OPERATION_RETRY_AFTER_SECONDS),
        },
        body: JSON.stringify(cluster),
      });
      const request = idempotentRequest(headers['idempotency-key'], { method: 'PATCH', path: `/v1/clusters/${id}`, body: patch }, respond);
      const outcome = await updateClusterSpec(c.get('services'), tenantOf(c), id, patch, {
        ...ifMatchOption(ifMatch),
        ...(request === undefined ? {} : { request }),
      });
      if (outcome.kind === 'replay') {
        const replayed = replayOf(outcome.response);
        return c.json(replayed.cluster, 202, replayed.headers);
      }
      if (outcome.value.status.phase !== 'Updating') return c.json(outcome.value, 200, { etag: etagOf(outcome.version) });
      return c.json(outcome.value, 202, respond(outcome.value, undefined, outcome.version).headers);
    },
    (result) => {
      if (result.success) return undefined;
      // The validator hands the hook the body it failed to validate: it names what the patch tried to set.
      if (result.target === 'json') throw patchProblem(result.error, (result as { data?: unknown }).data);
      throw validationErrorOf(result.error, result.target === 'header' ? 'header' : 'parameter');
    },
  );
}
