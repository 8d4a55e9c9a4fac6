import { type OpenAPIHono, createRoute } from '@hono/zod-openapi';
import { Operation } from '#core';
import { startKeyRotation } from '#services';
import { OPERATION_RETRY_AFTER_SECONDS } from '../etag.ts';
import { type AppEnv, tenantOf } from '../context.ts';
import { ClusterIdParam, problems } from '../schemas.ts';
import { needs } from '../scopes.ts';

const route = createRoute({
  method: 'post',
  path: '/v1/clusters/{id}/encryption-key-rotations',
  operationId: 'createEncryptionKeyRotation',
  tags: ['Clusters'],
  summary: "Rotate the cluster's Secret-encryption key",
  description:
    'Starts the upstream rotation procedure: the new key is added second on every control plane, made first, every Secret is rewritten, and the old key is dropped, ' +
    'restarting API servers one at a time. Progress shows in `status.encryption.rotation.phase` (Preparing, Prepared, Completing, Completed). ' +
    '409 while another operation runs, or for KMS clusters.',
  ...needs('clusters'),
  request: { params: ClusterIdParam },
  responses: {
    202: {
      description: 'The rotation has started.',
      headers: { Location: { description: 'The rotation operation.', schema: { type: 'string' } } },
      content: { 'application/json': { schema: Operation } },
    },
    ...problems(400, 401, 403, 404, 409),
  },
});

export function registerV1ClustersEncryptionKeyRotationsCreate(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const operation = await startKeyRotation(c.get('services'), tenantOf(c), c.req.valid('param').id);
    return c.json(operation, 202, { location: `/v1/operations/${operation.id}`, 'retry-after': String(OPERATION_RETRY_AFTER_SECONDS) });
  });
}
