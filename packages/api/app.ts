import { OpenAPIHono } from '@hono/zod-openapi';
import { Scalar } from '@scalar/hono-api-reference';
import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { requestId } from 'hono/request-id';
import { KilnError, UnauthorizedError, validationErrorOf } from '#core';
import { type KilnServices, authenticate } from '#services';
import type { AppEnv } from './context.ts';
import { problemResponse } from './problem.ts';
import { registerV1ClustersCreate } from './routes/v1_clusters_create.ts';
import { registerV1ClustersDelete } from './routes/v1_clusters_delete.ts';
import { registerV1ClustersEncryptionKeyRotationsCreate } from './routes/v1_clusters_encryption_key_rotations_create.ts';
import { registerV1ClustersEventsList } from './routes/v1_clusters_events_list.ts';
import { registerV1ClustersGet } from './routes/v1_clusters_get.ts';
import { registerV1ClustersKubeconfigGet } from './routes/v1_clusters_kubeconfig_get.ts';
import { registerV1ClustersList } from './routes/v1_clusters_list.ts';
import { registerV1ClustersNodesList } from './routes/v1_clusters_nodes_list.ts';
import { registerV1ClustersOperationsList } from './routes/v1_clusters_operations_list.ts';
import { registerV1ClustersSshKeyGet } from './routes/v1_clusters_ssh_key_get.ts';
import { registerV1ClustersUpdate } from './routes/v1_clusters_update.ts';
import { registerV1KubernetesVersionsList } from './routes/v1_kubernetes_versions_list.ts';
import { registerV1OperationsGet } from './routes/v1_operations_get.ts';
import { registerV1TenantsCreate } from './routes/v1_tenants_create.ts';

const MAX_BODY_BYTES = 256 * 1024;

function authentication(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const header = c.req.header('authorization');
    const match = header === undefined ? null : /^Bearer\s+(\S{1,512})$/i.exec(header);
    const token = match?.[1];
    if (token === undefined) throw new UnauthorizedError();
    const principal = await authenticate(c.get('services'), token);
    if (principal === undefined) throw new UnauthorizedError('The bearer token is not valid.');
    c.set('principal', principal);
    await next();
  };
}

/** The whole HTTP API; the Lambda handler and the local server both serve this app. */
export function newApp(services: KilnServices): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationErrorOf(result.error, result.target === 'json' ? 'json' : result.target === 'header' ? 'header' : 'parameter');
      return undefined;
    },
  });

  app.use('*', requestId({ headerName: 'x-request-id' }));
  app.use('*', async (c, next) => {
    c.set('services', services);
    await next();
  });
  app.use(
    '/v1/*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw new KilnError('payload_too_large', `The body exceeds ${MAX_BODY_BYTES} bytes.`);
      },
    }),
  );
  app.use('/v1/*', authentication());

  app.onError((error, c) => problemResponse(c, error, services.log));
  app.notFound((c) => problemResponse(c, new KilnError('not_found', `No route for ${c.req.method} ${c.req.path}.`), services.log));

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'A tenant API key (kiln_...), or the admin token for /v1/tenants.',
  });

  app.get('/healthz', (c) => c.json({ status: 'ok' }));

  registerV1TenantsCreate(app);
  registerV1ClustersCreate(app);
  registerV1ClustersList(app);
  registerV1ClustersGet(app);
  registerV1ClustersUpdate(app);
  registerV1ClustersDelete(app);
  registerV1ClustersOperationsList(app);
  registerV1ClustersNodesList(app);
  registerV1ClustersEventsList(app);
  registerV1ClustersEncryptionKeyRotationsCreate(app);
  registerV1ClustersSshKeyGet(app);
  registerV1ClustersKubeconfigGet(app);
  registerV1OperationsGet(app);
  registerV1KubernetesVersionsList(app);

  app.get('/openapi.json', (c) => c.json(openApiDocument(app)));
  app.get('/docs', Scalar({ url: '/openapi.json', pageTitle: 'Kiln API' }));
  return app;
}

export function openApiDocument(app: OpenAPIHono<AppEnv>): ReturnType<OpenAPIHono<AppEnv>['getOpenAPI31Document']> {
  return app.getOpenAPI31Document({
    openapi: '3.1.0',
    info: {
      title: 'Kiln',
      version: '1.0.0',
      description: 'Order hardened Kubernetes clusters and follow them through their lifecycle.',
      license: { name: 'Proprietary', url: 'https://kiln.dev/license' },
      contact: { name: 'Kiln', url: 'https://kiln.dev' },
    },
    servers: [{ url: '/', description: 'The Kiln deployment serving this document' }],
    tags: [
      { name: 'Tenants', description: 'Tenants and their API keys (admin only).' },
      { name: 'Clusters', description: 'Order, read and delete clusters.' },
      { name: 'Operations', description: 'Long-running work on clusters.' },
      { name: 'Kubernetes versions', description: 'The Kubernetes minors Kiln offers, with their end-of-life dates.' },
    ],
    security: [{ bearer: [] }],
  });
}
