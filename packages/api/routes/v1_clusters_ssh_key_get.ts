import { type OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { downloadSshKey } from '#services';
import { type AppEnv, tenantOf } from '../context.ts';
import { ClusterIdParam, problems } from '../schemas.ts';
import { needs } from '../scopes.ts';

const SshKey = z
  .object({
    privateKey: z.string().describe('OpenSSH private key (ed25519). Shown once; Kiln keeps no copy afterwards.'),
    publicKey: z.string(),
    fingerprint: z.string(),
  })
  .openapi('SshKey');

const route = createRoute({
  method: 'get',
  path: '/v1/clusters/{id}/ssh-key',
  operationId: 'downloadClusterSshKey',
  tags: ['Clusters'],
  summary: "Download the cluster's managed SSH private key (once)",
  description:
    'For clusters with a managed SSH key. The first call returns the private key and Kiln discards its sealed copy; later calls answer 410. ' +
    'Clusters with a self-managed key answer 409.',
  ...needs('clusters'),
  request: { params: ClusterIdParam },
  responses: {
    200: { description: 'The key pair.', content: { 'application/json': { schema: SshKey } } },
    410: { ...problems(404)[404], description: 'Already downloaded.' },
    ...problems(400, 401, 403, 404, 409),
  },
});

export function registerV1ClustersSshKeyGet(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const key = await downloadSshKey(c.get('services'), tenantOf(c), c.req.valid('param').id);
    return c.json(key, 200, { 'cache-control': 'no-store' });
  });
}
