import { OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { requestId } from 'hono/request-id';
import { secureHeaders } from 'hono/secure-headers';
import { Cluster, IMMUTABLE_ORDER_FIELDS, KilnError, NO_METRICS, UnauthorizedError, immutableMembersOf, validationErrorOf } from '#core';
import { ADMIN_BUCKET, type KilnServices, type Principal, authenticate, takeRequestToken } from '#services';
import type { AppEnv } from './context.ts';
import { jsonDepthLimit } from './json-depth.ts';
import { problemResponse } from './problem.ts';
import { RATE_LIMIT_HEADERS, RATE_LIMIT_HEADERS_IF_ADMITTED, REQUEST_ID_HEADER } from './schemas.ts';
import { registerReference } from './reference.ts';
import { registerV1ClustersCreate } from './routes/v1_clusters_create.ts';
import { registerV1ClustersDelete } from './routes/v1_clusters_delete.ts';
import { registerV1ClustersEncryptionKeyRotationsCreate } from './routes/v1_clusters_encryption_key_rotations_create.ts';
import { registerV1ApiKeys } from './routes/v1_api_keys.ts';
import { registerV1EventsList } from './routes/v1_events_list.ts';
import { registerV1WebhookEndpoints } from './routes/v1_webhook_endpoints.ts';
import { registerWebhookEvents } from './routes/webhook_events.ts';
import { registerV1UsageGet } from './routes/v1_usage_get.ts';
import { registerV1QuotasGet } from './routes/v1_quotas_get.ts';
import { registerV1AccountTrustGet } from './routes/v1_account_trust_get.ts';
import { registerV1ClustersCertificateRenewalsCreate } from './routes/v1_clusters_certificate_renewals_create.ts';
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
import { registerV1TenantsSuspension } from './routes/v1_tenants_suspension.ts';
import { pathPattern, scopeEnforcement } from './scopes.ts';

const MAX_BODY_BYTES = 256 * 1024;

/** Response headers a portal's script may read. */
export const CORS_EXPOSED_HEADERS = ['ETag', 'Location', 'x-request-id', 'Idempotent-Replayed', 'Retry-After', 'RateLimit', 'RateLimit-Policy', 'Operation-Location'];

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

/**
 * Per-tenant rate limiting (the admin has a bucket of its own): a request the tenant's bucket has no token for is
 * a 429 with Retry-After before anything runs; every answer carries the RateLimit fields.
 */
function rateLimiting(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const principal = c.get('principal');
    const headers = await takeRequestToken(c.get('services'), principal.kind === 'admin' ? ADMIN_BUCKET : principal.tenantId);
    await next();
    for (const [name, value] of Object.entries(headers)) c.res.headers.set(name, value);
  };
}

/** What the app serves besides the API. */
export interface AppOptions {
  /** Reads Scalar's standalone script for the reference page at /docs (see functions/api.ts); without it, no /docs. */
  referenceScript?: () => Promise<string>;
}

/** The whole HTTP API; the Lambda handler and the local server both serve this app. */
export function newApp(services: KilnServices, options: AppOptions = {}): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationErrorOf(result.error, result.target === 'json' ? 'json' : result.target === 'header' ? 'header' : 'parameter');
      return undefined;
    },
  });

  app.use('*', requestId({ headerName: 'x-request-id' }));
  // One access-log line per request, with its metrics: never a header, a query or a body (they may hold secrets).
  app.use('*', async (c, next) => {
    const started = performance.now();
    await next();
    const durationMs = Math.round((performance.now() - started) * 10) / 10;
    const principal = c.get('principal') as Principal | undefined;
    const status = c.res.status;
    services.log.info('request', {
      requestId: c.get('requestId'),
      method: c.req.method,
      path: c.req.path,
      status,
      durationMs,
      // The key's id too, so a change can be traced to the key that made it (and that key revoked).
      ...(principal === undefined ? {} : principal.kind === 'admin' ? { caller: 'admin' } : { caller: 'tenant', tenantId: principal.tenantId, ...(principal.keyId === undefined ? {} : { keyId: principal.keyId }) }),
    });
    // API Gateway counts every request, its latency and its 4xx and 5xx per route; Kiln adds what only it knows:
    // the requests its per-tenant limit refused, and the answers it made a 5xx itself. A plain request writes no metric.
    if (status === 429 || status >= 500) {
      const metrics = services.metrics ?? NO_METRICS;
      metrics.count(status === 429 ? 'RateLimited' : 'ServerErrors');
      await metrics.flush();
    }
  });
  // On every answer, errors included: no sniffing, HTTPS only, never framed, and (outside the reference page) no
  // content that could run: the API answers JSON only.
  app.use(
    '*',
    secureHeaders({
      strictTransportSecurity: 'max-age=63072000; includeSubDomains',
      xFrameOptions: 'DENY',
      referrerPolicy: 'no-referrer',
      crossOriginResourcePolicy: 'same-origin',
    }),
  );
  app.use('*', async (c, next) => {
    await next();
    if (!c.res.headers.has('content-security-policy')) c.res.headers.set('content-security-policy', "default-src 'none'; frame-ancestors 'none'");
    // Answers are per tenant: never kept by shared caches; a read may be kept by its client and revalidated with its
    // ETag (If-None-Match), everything else not kept at all.
    if (!c.res.headers.has('cache-control')) c.res.headers.set('cache-control', c.req.method === 'GET' && c.res.status < 300 ? 'private, no-cache' : 'no-store');
  });
  // Browser portals: preflights are answered here, before authentication; only the deployment's origins are allowed.
  const origins = new Set(services.corsOrigins ?? []);
  app.use(
    '*',
    cors({
      origin: (origin) => (origins.has(origin) ? origin : null),
      allowMethods: ['GET', 'POST', 'PATCH', 'DELETE'],
      allowHeaders: ['authorization', 'content-type', 'if-match', 'idempotency-key'],
      exposeHeaders: CORS_EXPOSED_HEADERS,
      maxAge: 600,
    }),
  );
  // The request's own services: its log lines carry its id, and the operations it starts carry it into their workflows.
  app.use('*', async (c, next) => {
    const id = c.get('requestId');
    c.set('services', { ...services, requestId: id, log: services.log.child({ requestId: id }) });
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
  app.use('/v1/*', rateLimiting());
  app.use('/v1/*', scopeEnforcement(app));
  app.use('/v1/*', jsonDepthLimit());

  app.onError((error, c) => problemResponse(c, error, services.log));
  app.notFound((c) => {
    // A path the API serves with other methods is a 405 that says which (Allow), not a 404.
    const allowed = methodsServing(app, c.req.path);
    if (allowed.length === 0) return problemResponse(c, new KilnError('not_found', `No route for ${c.req.method} ${c.req.path}.`), services.log);
    const response = problemResponse(c, new KilnError('method_not_allowed', `${c.req.method} is not allowed on ${c.req.path}; it takes ${allowed.join(', ')}.`), services.log);
    response.headers.set('allow', allowed.join(', '));
    return response;
  });

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description:
      'A tenant API key (kiln_...), or the admin token for /v1/tenants. Each operation names in `x-kiln-scope` the one scope it needs: `read-only` (every key holds it), ' +
      '`clusters`, `webhooks` or `keys` for a key (403 naming the scope when the key lacks it), `admin` for the admin token.',
  });

  app.get('/healthz', (c) => c.json({ status: 'ok' }));

  registerV1TenantsCreate(app);
  registerV1TenantsSuspension(app);
  registerV1ClustersCreate(app);
  registerV1ClustersList(app);
  registerV1ClustersGet(app);
  registerV1ClustersUpdate(app);
  registerV1ClustersDelete(app);
  registerV1ClustersOperationsList(app);
  registerV1ClustersNodesList(app);
  registerV1ClustersEventsList(app);
  registerV1ClustersEncryptionKeyRotationsCreate(app);
  registerV1ClustersCertificateRenewalsCreate(app);
  registerV1ApiKeys(app);
  registerV1EventsList(app);
  registerV1UsageGet(app);
  registerV1QuotasGet(app);
  registerV1AccountTrustGet(app);
  registerV1WebhookEndpoints(app);
  registerWebhookEvents(app);
  registerV1ClustersSshKeyGet(app);
  registerV1ClustersKubeconfigGet(app);
  registerV1OperationsGet(app);
  registerV1KubernetesVersionsList(app);

  app.get('/openapi.json', (c) => c.json(openApiDocument(app)));
  if (options.referenceScript !== undefined) registerReference(app, options.referenceScript);
  return app;
}

/** The methods the app serves a path with, from its routes (path templates such as /v1/clusters/{id}). */
function methodsServing(app: OpenAPIHono<AppEnv>, path: string): string[] {
  const methods = app.openAPIRegistry.definitions.flatMap((definition) => {
    if (definition.type !== 'route') return [];
    return pathPattern(definition.route.path).test(path) ? [definition.route.method.toUpperCase()] : [];
  });
  return [...new Set(methods)].sort();
}

/** Fields of a response the server sets: `readOnly` in the document, so generators merging schemas make them computed. */
const SERVER_SET_FIELDS: Readonly<Record<string, readonly string[]>> = {
  Cluster: ['id', 'status', 'createdAt', 'updatedAt'],
};

type OpenApiDocument = ReturnType<OpenAPIHono<AppEnv>['getOpenAPI31Document']>;
type SchemaObject = { properties?: Record<string, Record<string, unknown>>; description?: string };

const SCHEMA_REF = '#/components/schemas/';

/** A schema with every reference to a component replaced by the component itself (the order's schemas have no cycles). */
function inlined(schema: unknown, schemas: Record<string, unknown>): unknown {
  if (Array.isArray(schema)) return schema.map((item) => inlined(item, schemas));
  if (schema === null || typeof schema !== 'object') return schema;
  const { $ref, ...rest } = schema as Record<string, unknown>;
  const own = Object.fromEntries(Object.entries(rest).map(([key, value]) => [key, inlined(value, schemas)]));
  if (typeof $ref !== 'string' || !$ref.startsWith(SCHEMA_REF)) return $ref === undefined ? own : { $ref, ...own };
  const target = schemas[$ref.slice(SCHEMA_REF.length)];
  if (target === undefined) throw new Error(`the document has no component ${$ref}`);
  return { ...(inlined(target, schemas) as Record<string, unknown>), ...own };
}

/**
 * What zod cannot say beside a `$ref` (OpenAPI 3.1 allows siblings): order fields fixed at creation get
 * `x-kiln-immutable: true` and a sentence saying so (a Terraform provider makes them requires-replace), and
 * server-set fields get `readOnly: true`. The order a client sends is written out in the create operation
 * itself: its defaults then mean "optional" to generators (openapi-typescript makes a defaulted property of a
 * component required, which is right for what Kiln answers and wrong for what a client sends).
 */
function annotated(document: OpenApiDocument): OpenApiDocument {
  const schemas = (document.components?.schemas ?? {}) as Record<string, SchemaObject>;
  const properties = (name: string) => {
    const found = schemas[name]?.properties;
    if (found === undefined) throw new Error(`the document has no ${name} schema to annotate`);
    return found;
  };
  const fixed = (schema: Record<string, Record<string, unknown>>, fields: readonly string[], name: string) => {
    for (const field of fields) {
      const property = schema[field];
      if (property === undefined) throw new Error(`${name} has no ${field} property`);
      const description = typeof property.description === 'string' ? `${property.description} ` : '';
      schema[field] = { ...property, 'x-kiln-immutable': true, description: `${description}Fixed at creation: changing it needs a new cluster.` };
    }
  };
  for (const name of ['ClusterSpec', 'Cluster']) fixed(properties(name), IMMUTABLE_ORDER_FIELDS, name);
  // Parts of which only some members can change (the allow-lists): the others are marked one by one.
  fixed(properties('NetworkSpec'), immutableMembersOf('network'), 'NetworkSpec');
  fixed(properties('SshSpec'), immutableMembersOf('ssh'), 'SshSpec');
  // Kiln answers a cluster in full, its defaults applied: every field its output type does not make optional is
  // required (zod writes the component for input, where a defaulted field may be left out).
  const cluster = schemas.Cluster as SchemaObject & { required?: string[] };
  cluster.required = Object.entries(Cluster.shape)
    .filter(([, field]) => (field as { _zod: { optout?: string } })._zod.optout !== 'optional')
    .map(([name]) => name);
  for (const [name, fields] of Object.entries(SERVER_SET_FIELDS)) {
    const schema = properties(name);
    for (const field of fields) schema[field] = { ...schema[field], readOnly: true };
  }
  const create = document.paths?.['/v1/clusters']?.post?.requestBody as { content: Record<string, { schema: unknown }> } | undefined;
  if (create === undefined) throw new Error('the document has no POST /v1/clusters body');
  for (const media of Object.values(create.content)) media.schema = inlined(media.schema, schemas);
  if (!JSON.stringify(document).includes(`"${SCHEMA_REF}ClusterSpec"`)) delete schemas.ClusterSpec;
  // An operation that takes a body may answer 413 (before authentication). Every /v1 answer carries the request id,
  // and every one after the rate limiter the RateLimit fields: a 500 or 503 may come before it (authentication or the
  // limiter itself failing), so there they are documented but not required.
  for (const [path, operations] of Object.entries(document.paths ?? {})) {
    if (!path.startsWith('/v1/')) continue;
    for (const operation of Object.values(operations as Record<string, { requestBody?: unknown; responses?: Record<string, { headers?: Record<string, unknown> }> }>)) {
      const responses = (operation.responses ??= {});
      if (operation.requestBody !== undefined) {
        responses['413'] = {
          description: `The body is larger than ${String(MAX_BODY_BYTES)} bytes.`,
          content: { 'application/problem+json': { schema: { $ref: `${SCHEMA_REF}Problem` } } },
        } as (typeof responses)[string];
      }
      for (const [status, response] of Object.entries(responses)) {
        const rateLimit = status === '401' || status === '413' ? {} : status === '500' || status === '503' ? RATE_LIMIT_HEADERS_IF_ADMITTED : RATE_LIMIT_HEADERS;
        response.headers = { ...REQUEST_ID_HEADER, ...rateLimit, ...response.headers };
      }
    }
  }
  return document;
}

export function openApiDocument(app: OpenAPIHono<AppEnv>): OpenApiDocument {
  return annotated(
    app.getOpenAPI31Document({
      openapi: '3.1.0',
      info: {
        title: 'Kiln',
        version: '1.0.0',
        description:
          'Order hardened Kubernetes clusters and follow them through their lifecycle.\n\n' +
          // OpenAPI describes only the operations a path has, so the answer to any other method is said here.
          'A method that a path does not list answers `405` with a problem document (`code: method_not_allowed`) and an `Allow` header naming the methods the path takes.',
        license: { name: 'Proprietary', url: 'https://kiln.dev/license' },
        contact: { name: 'Kiln', url: 'https://kiln.dev' },
      },
      servers: [{ url: '/', description: 'The Kiln deployment serving this document' }],
      tags: [
        { name: 'Tenants', description: 'Tenants, their first API key, their suspension (admin only).' },
        { name: 'Clusters', description: 'Order, read and delete clusters.' },
        { name: 'Operations', description: 'Long-running work on clusters.' },
        { name: 'Kubernetes versions', description: 'The Kubernetes minors Kiln offers, with their end-of-life dates.' },
        { name: 'API keys', description: "A tenant's API keys: list, create, revoke." },
        { name: 'Events', description: "The tenant's events, for integrators who pull." },
        { name: 'Usage', description: 'Machine time per cluster, pool and instance type, for billing.' },
        { name: 'Webhooks', description: 'Endpoints Kiln pushes the events to, signed (Standard Webhooks), with their delivery log.' },
      ],
      security: [{ bearer: [] }],
    }),
  );
}
