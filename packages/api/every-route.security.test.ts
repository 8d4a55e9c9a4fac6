import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterSpec, ERROR_CODES, Problem, newId } from '#core';
import { listApiKeys, newOperation } from '#services';
import type { ClusterRecord } from '#store';
import type { ApiResponse } from '../../test/support/api.ts';
import { type ApiHarness, startApiHarness } from '../../test/support/api-harness.ts';
import { newApp, openApiDocument } from './app.ts';

/**
 * One suite over every operation in the OpenAPI document (unkey's shared route
 * suite): who may call it, what a stranger's id answers, what broken bodies
 * answer, and that every error leaves as the same problem document with the
 * request id. The routes come from the document, so a new route cannot skip it.
 */

type Caller = 'admin' | 'tenant' | 'any';
interface RouteCase {
  caller: Caller;
  /** A body the route accepts, for routes that take one. */
  body?: Record<string, unknown>;
  query?: string;
}

const ORDER = { name: 'suite', region: 'eu-central-1', nodePools: [{ name: 'default', size: 1 }] };

const ROUTES: Record<string, RouteCase> = {
  createTenant: { caller: 'admin', body: { name: 'suite-tenant' } },
  createCluster: { caller: 'tenant', body: ORDER },
  listClusters: { caller: 'tenant' },
  getCluster: { caller: 'tenant' },
  updateCluster: { caller: 'tenant', body: { extensions: { intrusionDetection: { enabled: true } } } },
  deleteCluster: { caller: 'tenant' },
  listClusterOperations: { caller: 'tenant' },
  listClusterNodes: { caller: 'tenant' },
  listClusterEvents: { caller: 'tenant' },
  createEncryptionKeyRotation: { caller: 'tenant' },
  createCertificateRenewal: { caller: 'tenant' },
  listApiKeys: { caller: 'tenant' },
  listEvents: { caller: 'tenant' },
  getUsage: { caller: 'tenant', query: '?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z' },
  getQuotas: { caller: 'tenant' },
  getAccountTrust: { caller: 'tenant' },
  createWebhookEndpoint: { caller: 'tenant', body: { url: 'https://203.0.113.10/hooks' } },
  listWebhookEndpoints: { caller: 'tenant' },
  getWebhookEndpoint: { caller: 'tenant' },
  updateWebhookEndpoint: { caller: 'tenant', body: { description: 'suite' } },
  deleteWebhookEndpoint: { caller: 'tenant' },
  listWebhookDeliveries: { caller: 'tenant' },
  rotateWebhookSecret: { caller: 'tenant' },
  replayWebhookDeliveries: { caller: 'tenant', body: { eventId: 'evt_01jd8x7t5k3m4n5p6q7r8s9t0v' } },
  sendTestWebhook: { caller: 'tenant' },
  createApiKey: { caller: 'tenant', body: { description: 'suite' } },
  revokeApiKey: { caller: 'tenant' },
  downloadClusterSshKey: { caller: 'tenant' },
  getClusterKubeconfig: { caller: 'tenant', query: '?validityMinutes=15' },
  getOperation: { caller: 'tenant' },
  listKubernetesVersions: { caller: 'any' },
};

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

interface Operation {
  operationId: string;
  method: (typeof METHODS)[number];
  path: string;
  hasBody: boolean;
}

let api: ApiHarness;
let operations: Operation[];
/** A tenant that owns a cluster and an operation; another tenant asks for them. */
let owner: { apiKey: string; clusterId: string; operationId: string; apiKeyId: string; webhookEndpointId: string };
let stranger: { apiKey: string };

beforeAll(async () => {
  api = await startApiHarness();
  const document = openApiDocument(newApp(api.services)) as unknown as { paths: Record<string, Record<string, { operationId?: string; requestBody?: unknown }>> };
  operations = Object.entries(document.paths).flatMap(([path, item]) =>
    METHODS.flatMap((method) => {
      const operation = item[method];
      return operation === undefined ? [] : [{ operationId: operation.operationId ?? `${method} ${path}`, method, path, hasBody: operation.requestBody !== undefined }];
    }),
  );

  const tenant = await api.newTenant();
  const clusterId = newId('cluster');
  const now = new Date().toISOString();
  const spec = ClusterSpec.parse(ORDER);
  const cluster: ClusterRecord = {
    tenantId: tenant.id,
    id: clusterId,
    name: spec.name,
    spec,
    status: { phase: 'Ready', conditions: [], endpoint: 'https://api.suite.example:6443' },
    createdAt: now,
    updatedAt: now,
    version: 1,
  };
  const operation = newOperation(tenant.id, clusterId, 'provision', now);
  await api.services.store.createCluster(cluster, operation);
  const [ownKey] = await listApiKeys(api.services, tenant.id);
  // The harness has no KMS to seal a secret with: the owner's endpoint is written as the service would.
  const webhookEndpointId = newId('webhookEndpoint');
  await api.services.store.createWebhookEndpoint({
    tenantId: tenant.id,
    id: webhookEndpointId,
    url: 'https://203.0.113.10/hooks',
    eventTypes: [],
    enabled: true,
    secrets: [{ sealed: 'sealed' }],
    cursor: 'evt_',
    createdAt: now,
    updatedAt: now,
    version: 1,
  });
  owner = { apiKey: tenant.apiKey, clusterId, operationId: operation.id, apiKeyId: ownKey?.id ?? '', webhookEndpointId };
  stranger = await api.newTenant();
});

afterAll(async () => {
  await api.close();
});

type Ids = { cluster: string; operation: string; apiKey: string; webhookEndpoint: string };

/** The concrete URL of an operation: its id parameter filled with an id of the kind the path names. */
function urlOf(operation: Operation, ids: Ids): string {
  const id = operation.path.startsWith('/v1/operations/')
    ? ids.operation
    : operation.path.startsWith('/v1/api-keys/')
      ? ids.apiKey
      : operation.path.startsWith('/v1/webhook-endpoints/')
        ? ids.webhookEndpoint
        : ids.cluster;
  return `${operation.path.replace('{id}', id)}${ROUTES[operation.operationId]?.query ?? ''}`;
}

const someIds = (): Ids => ({ cluster: newId('cluster'), operation: newId('operation'), apiKey: newId('apiKey'), webhookEndpoint: newId('webhookEndpoint') });
const ownerIds = (): Ids => ({ cluster: owner.clusterId, operation: owner.operationId, apiKey: owner.apiKeyId, webhookEndpoint: owner.webhookEndpointId });

function send(operation: Operation, options: { token?: string; ids?: Ids; rawBody?: string; body?: unknown } = {}) {
  const body = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  return api.callRaw(operation.method.toUpperCase(), urlOf(operation, options.ids ?? someIds()), { ...(options.token === undefined ? {} : { token: options.token }), ...(body === undefined ? {} : { body }) });
}

/** Every error: problem+json of the one shape, a code from the closed list, and the request id in the body and the header. */
function expectProblem(response: ApiResponse, status: number, code: keyof typeof ERROR_CODES): void {
  expect(response.status, response.text).toBe(status);
  expect(response.headers.get('content-type')).toBe('application/problem+json');
  const problem = Problem.strict().parse(response.body);
  expect(problem).toMatchObject({ status, code, title: ERROR_CODES[code].title });
  expect(problem.type).toMatch(/^https:\/\//);
  expect(problem.requestId).toMatch(/\S/);
  expect(response.headers.get('x-request-id')).toBe(problem.requestId);
  expect(response.text).not.toMatch(/\bat .+\.ts:\d+|node_modules/);
}

const each = (filter: (operation: Operation) => boolean) => () => {
  const chosen = operations.filter(filter);
  expect(chosen.length).toBeGreaterThan(0);
  return chosen;
};

describe('every route in the OpenAPI document', () => {
  it('is known to this suite, and the suite knows no route that is gone', () => {
    expect(operations.map((operation) => operation.operationId).sort()).toEqual(Object.keys(ROUTES).sort());
  });

  it('answers no token with 401 and a Bearer challenge', async () => {
    for (const operation of each(() => true)()) {
      const response = await send(operation, { body: ROUTES[operation.operationId]?.body });
      expectProblem(response, 401, 'unauthorized');
      expect(response.headers.get('www-authenticate'), operation.operationId).toBe('Bearer realm="kiln"');
    }
  });

  it('answers an unknown token with 401', async () => {
    for (const operation of each(() => true)()) {
      expectProblem(await send(operation, { token: 'kiln_not-a-real-key', body: ROUTES[operation.operationId]?.body }), 401, 'unauthorized');
      expectProblem(await send(operation, { token: 'no-prefix-at-all', body: ROUTES[operation.operationId]?.body }), 401, 'unauthorized');
    }
  });

  it('answers the wrong kind of token with 403', async () => {
    for (const operation of each((candidate) => ROUTES[candidate.operationId]?.caller !== 'any')()) {
      const token = ROUTES[operation.operationId]?.caller === 'admin' ? stranger.apiKey : api.adminToken;
      expectProblem(await send(operation, { token, body: ROUTES[operation.operationId]?.body }), 403, 'forbidden');
    }
  });

  it("answers another tenant's id exactly as an id that does not exist", async () => {
    for (const operation of each((candidate) => candidate.path.includes('{id}'))()) {
      const body = ROUTES[operation.operationId]?.body;
      const foreign = await send(operation, { token: stranger.apiKey, ids: ownerIds(), body });
      const missingIds = someIds();
      const missing = await send(operation, { token: stranger.apiKey, ids: missingIds, body });
      expectProblem(foreign, 404, 'not_found');
      expectProblem(missing, 404, 'not_found');
      const detail = (response: ApiResponse, ids: Record<string, string>) =>
        String(response.body.detail).replace(ids.cluster ?? '', '<id>').replace(ids.operation ?? '', '<id>').replace(ids.apiKey ?? '', '<id>').replace(ids.webhookEndpoint ?? '', '<id>');
      expect(detail(foreign, ownerIds()), operation.operationId).toBe(detail(missing, missingIds));
    }
    // The owner still sees them: the 404 above was about the caller, not the data.
    const own = await api.call('GET', `/v1/clusters/${owner.clusterId}`, { token: owner.apiKey });
    expect(own.status).toBe(200);
  });

  it('answers a body that is not JSON with 400', async () => {
    for (const operation of each((candidate) => candidate.hasBody)()) {
      const token = ROUTES[operation.operationId]?.caller === 'admin' ? api.adminToken : stranger.apiKey;
      expectProblem(await send(operation, { token, ids: ownerIds(), rawBody: '{"name":' }), 400, 'malformed_request');
    }
  });

  it('answers a field it does not know with 400 pointing at it', async () => {
    for (const operation of each((candidate) => candidate.hasBody)()) {
      const token = ROUTES[operation.operationId]?.caller === 'admin' ? api.adminToken : owner.apiKey;
      const body = { ...ROUTES[operation.operationId]?.body, colour: 'blue' };
      const response = await send(operation, { token, ids: ownerIds(), body });
      expectProblem(response, 400, 'validation_failed');
      expect(response.body.errors, operation.operationId).toContainEqual({ pointer: '/colour', detail: 'is not a known field' });
    }
  });
});
