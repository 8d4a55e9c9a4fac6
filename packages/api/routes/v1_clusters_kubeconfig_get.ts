import { type OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { KUBECONFIG_ACCESS, KUBECONFIG_MAX_MINUTES } from '#core';
import { issueKubeconfig } from '#services';
import { type AppEnv, tenantOf } from '../context.ts';
import { ClusterIdParam, problems } from '../schemas.ts';
import { needs } from '../scopes.ts';

const Kubeconfig = z
  .object({
    kubeconfig: z
      .string()
      .describe(
        'kubeconfig YAML: the cluster CA and a client certificate whose user is `kiln:key:<API key id>` (so the cluster\'s audit log names the key that asked) in the group `kiln:admins` (bound to cluster-admin) or `kiln:viewers` (bound to the built-in `view` role plus reading Nodes).',
      ),
    expiresAt: z.iso.datetime().describe('When the client certificate stops working.'),
  })
  .openapi('Kubeconfig');

const query = z
  .object({
    access: z
      .enum(KUBECONFIG_ACCESS)
      .default('admin')
      .openapi({
        param: { name: 'access', in: 'query' },
        description: `\`admin\` (cluster-admin, the default) or \`read-only\` (the built-in \`view\` role and Nodes: no Secrets, no changes). A client certificate cannot be revoked before it expires, so an admin one lives at most ${KUBECONFIG_MAX_MINUTES.admin} minutes; a read-only one at most ${KUBECONFIG_MAX_MINUTES['read-only']}.`,
      }),
    validityMinutes: z.coerce
      .number()
      .int()
      .min(5)
      .max(KUBECONFIG_MAX_MINUTES['read-only'])
      .default(60)
      .openapi({ param: { name: 'validityMinutes', in: 'query' }, description: `Lifetime of the client certificate: 5-${KUBECONFIG_MAX_MINUTES.admin} minutes for \`admin\`, 5-${KUBECONFIG_MAX_MINUTES['read-only']} for \`read-only\`.` }),
  })
  .superRefine((value, context) => {
    const max = KUBECONFIG_MAX_MINUTES[value.access];
    if (value.validityMinutes > max) context.addIssue({ code: 'custom', path: ['validityMinutes'], message: `must be at most ${max} for ${value.access} access` });
  });

const route = createRoute({
  method: 'get',
  path: '/v1/clusters/{id}/kubeconfig',
  operationId: 'getClusterKubeconfig',
  tags: ['Clusters'],
  summary: 'Issue a short-lived kubeconfig, admin or read-only',
  description:
    'Each call signs a new client certificate naming the API key that asked, valid for `validityMinutes` (default 60). Available once the cluster is Ready (409 before).',
  ...needs('clusters'),
  request: { params: ClusterIdParam, query },
  responses: {
    200: { description: 'A kubeconfig.', content: { 'application/json': { schema: Kubeconfig } } },
    ...problems(400, 401, 403, 404, 409),
  },
});

export function registerV1ClustersKubeconfigGet(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const principal = c.get('principal');
    const { access, validityMinutes } = c.req.valid('query');
    const issued = await issueKubeconfig(c.get('services'), tenantOf(c), c.req.valid('param').id, {
      access,
      validityMinutes,
      ...(principal.kind === 'tenant' && principal.keyId !== undefined ? { keyId: principal.keyId } : {}),
    });
    return c.json(issued, 200, { 'cache-control': 'no-store' });
  });
}
