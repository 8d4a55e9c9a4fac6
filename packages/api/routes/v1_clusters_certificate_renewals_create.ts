import { type OpenAPIHono, createRoute } from '@hono/zod-openapi';
import { Operation } from '#core';
import { CERTIFICATE_RENEWAL_DAYS, renewCertificates } from '#services';
import { OPERATION_RETRY_AFTER_SECONDS } from '../etag.ts';
import { type AppEnv, tenantOf } from '../context.ts';
import { ClusterIdParam, problems } from '../schemas.ts';
import { needs } from '../scopes.ts';

const route = createRoute({
  method: 'post',
  path: '/v1/clusters/{id}/certificate-renewals',
  operationId: 'createCertificateRenewal',
  tags: ['Clusters'],
  summary: "Renew the cluster's certificates",
  description:
    'Replaces the control plane machines one at a time: each new machine joins with certificates kubeadm makes for a year before an old one is drained and leaves, ' +
    'so etcd keeps its quorum and the API server stays reachable. `status.certificates` shows the new expiry when the operation has succeeded. ' +
    `Kiln does this on its own when the earliest certificate expires within ${CERTIFICATE_RENEWAL_DAYS} days; kubelets renew their own client certificates, and the cluster CA (ten years) is not rotated. ` +
    'Idempotent: while a renewal runs, asking again answers with that renewal (200) instead of starting another. 409 while another operation runs.',
  ...needs('clusters'),
  request: { params: ClusterIdParam },
  responses: {
    200: {
      description: 'A renewal is already running: this is it.',
      headers: { Location: { description: 'The renewal operation.', schema: { type: 'string' } } },
      content: { 'application/json': { schema: Operation } },
    },
    202: {
      description: 'The renewal has started.',
      headers: { Location: { description: 'The renewal operation.', schema: { type: 'string' } } },
      content: { 'application/json': { schema: Operation } },
    },
    ...problems(400, 401, 403, 404, 409),
  },
});

export function registerV1ClustersCertificateRenewalsCreate(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const { operation, started } = await renewCertificates(c.get('services'), tenantOf(c), c.req.valid('param').id);
    return c.json(operation, started ? 202 : 200, { location: `/v1/operations/${operation.id}`, ...(started ? { 'retry-after': String(OPERATION_RETRY_AFTER_SECONDS) } : {}) });
  });
}
