import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ADMIN_SCOPE, API_KEY_SCOPES, type ApiKeyScope, ClusterSpec, ERROR_CODES, Problem, firstIdAt, newId } from '#core';
import { type KilnServices, RequestAdmission, listApiKeys, newOperation, resumeTenant, suspendTenant } from '#services';
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
  suspendTenant: { caller: 'admin' },
  resumeTenant: { caller: 'admin' },
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
  /** The scope it needs (x-kiln-scope). */
  scope: unknown;
}

let api: ApiHarness;
let operations: Operation[];
/** A tenant that owns a cluster and an operation; another tenant asks for them. */
let owner: { tenantId: string; apiKey: string; clusterId: string; operationId: string; apiKeyId: string; webhookEndpointId: string };
let stranger: { apiKey: string };

beforeAll(async () => {
  api = await startApiHarness();
  const document = openApiDocument(newApp(api.services)) as unknown as {
    paths: Record<string, Record<string, { operationId?: string; requestBody?: unknown; 'x-kiln-scope'?: unknown }>>;
  };
  operations = Object.entries(document.paths).flatMap(([path, item]) =>
    METHODS.flatMap((method) => {
      const operation = item[method];
      if (operation === undefined) return [];
      return [{ operationId: operation.operationId ?? `${method} ${path}`, method, path, hasBody: operation.requestBody !== undefined, scope: operation['x-kiln-scope'] }];
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
  owner = { tenantId: tenant.id, apiKey: tenant.apiKey, clusterId, operationId: operation.id, apiKeyId: ownKey?.id ?? '', webhookEndpointId };
  stranger = await api.newTenant();
});

afterAll(async () => {
  await api.close();
});

type Ids = { cluster: string; operation: string; apiKey: string; webhookEndpoint: string; tenant: string };

/** The concrete URL of an operation: its id parameter filled with an id of the kind the path names. */
function urlOf(operation: Operation, ids: Ids): string {
  const id = operation.path.startsWith('/v1/tenants/')
    ? ids.tenant
    : operation.path.startsWith('/v1/operations/')
    ? ids.operation
    : operation.path.startsWith('/v1/api-keys/')
      ? ids.apiKey
      : operation.path.startsWith('/v1/webhook-endpoints/')
        ? ids.webhookEndpoint
        : ids.cluster;
  return `${operation.path.replace('{id}', id)}${ROUTES[operation.operationId]?.query ?? ''}`;
}

const someIds = (): Ids => ({ cluster: newId('cluster'), operation: newId('operation'), apiKey: newId('apiKey'), webhookEndpoint: newId('webhookEndpoint'), tenant: newId('tenant') });
const ownerIds = (): Ids => ({ cluster: owner.clusterId, operation: owner.operationId, apiKey: owner.apiKeyId, webhookEndpoint: owner.webhookEndpointId, tenant: owner.tenantId });

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
    for (const operation of each((candidate) => candidate.path.includes('{id}') && ROUTES[candidate.operationId]?.caller !== 'admin')()) {
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

/** A further key of a tenant, made through the API with one of its keys. */
async function keyOf(token: string, order: { scopes?: ApiKeyScope[]; expiresAt?: string }): Promise<string> {
  const created = await api.call<{ apiKey: string }>('POST', '/v1/api-keys', { token, body: { description: 'suite', ...order } });
  expect(created.status, created.text).toBe(201);
  return created.body.apiKey;
}

/** Another API instance over the same table: an admission cache of its own, as a second Lambda execution environment has. */
function otherInstance(): { services: KilnServices; get: (path: string, token: string) => Promise<ApiResponse> } {
  const services: KilnServices = { ...api.services, admission: new RequestAdmission() };
  const app = newApp(services);
  return {
    services,
    get: async (path, token) => {
      const response = await app.request(path, { headers: { authorization: `Bearer ${token}` } });
      const text = await response.text();
      return { status: response.status, headers: response.headers, body: JSON.parse(text) as Record<string, unknown>, text };
    },
  };
}

/** Ids are monotonic across the worker: one made while a test's clock was ahead would date every later id ahead. */
function expectNoIdAhead(): void {
  expect(newId('event') < firstIdAt('event', new Date(Date.now() + 1_000))).toBe(true);
}

const CHANGES = new Set<Operation['method']>(['post', 'put', 'patch', 'delete']);
/** Reads that hand out a credential to a cluster: a change in all but name. */
const CREDENTIAL_READS = ['downloadClusterSshKey', 'getClusterKubeconfig'];

describe('API key scopes, expiry and tenant suspension, on every route', () => {
  it('names, on every operation, the one scope it needs: read-only for reads, clusters for the credential reads, admin for the operator', () => {
    for (const operation of operations) {
      const scope = operation.scope;
      expect([...API_KEY_SCOPES, ADMIN_SCOPE], operation.operationId).toContain(scope);
      if (ROUTES[operation.operationId]?.caller === 'admin') expect(scope, operation.operationId).toBe(ADMIN_SCOPE);
      else if (CREDENTIAL_READS.includes(operation.operationId)) expect(scope, operation.operationId).toBe('clusters');
      else expect(scope === 'read-only', operation.operationId).toBe(operation.method === 'get');
    }
  });

  it('answers a read-only key with 403 naming the scope on every POST, PUT, PATCH and DELETE, and on the credential reads', async () => {
    const readOnly = await keyOf(owner.apiKey, { scopes: ['read-only'] });
    for (const operation of each((candidate) => CHANGES.has(candidate.method) || CREDENTIAL_READS.includes(candidate.operationId))()) {
      const response = await send(operation, { token: readOnly, ids: ownerIds(), body: ROUTES[operation.operationId]?.body });
      expectProblem(response, 403, 'forbidden');
      expect(String(response.body.detail), operation.operationId).toContain(String(operation.scope));
    }
    // Nothing of the owner's changed: its cluster is still there, and it still has its one key and the read-only one.
    expect((await api.call('GET', `/v1/clusters/${owner.clusterId}`, { token: readOnly })).status).toBe(200);
  });

  it('lets a read-only key read', async () => {
    const readOnly = await keyOf(owner.apiKey, { scopes: ['read-only'] });
    for (const operation of each((candidate) => candidate.method === 'get' && !CREDENTIAL_READS.includes(candidate.operationId))()) {
      const response = await send(operation, { token: readOnly, ids: ownerIds() });
      expect(response.status, `${operation.operationId}: ${response.text}`).toBe(200);
    }
  });

  it('answers a key without clusters, webhooks or keys with 403 naming it on each operation that needs it, and lets it through the others', async () => {
    const tenant = await api.newTenant();
    for (const lacking of ['clusters', 'webhooks', 'keys'] as const) {
      const token = await keyOf(tenant.apiKey, { scopes: API_KEY_SCOPES.filter((scope) => scope !== lacking) });
      // Ids of nothing: an operation the key may call answers 404, never 403.
      for (const operation of each((candidate) => candidate.path.includes('{id}') && ROUTES[candidate.operationId]?.caller === 'tenant')()) {
        const response = await send(operation, { token, body: ROUTES[operation.operationId]?.body });
        if (operation.scope === lacking) {
          expectProblem(response, 403, 'forbidden');
          expect(String(response.body.detail), operation.operationId).toContain(lacking);
        } else expect(response.status, `${operation.operationId} without ${lacking}: ${response.text}`).toBe(404);
      }
    }
  });

  it('answers an expired key with 401 on every operation, saying it expired', async () => {
    const tenant = await api.newTenant();
    const expiresAt = new Date(Date.now() + 3_600_000);
    const expiring = await keyOf(tenant.apiKey, { expiresAt: expiresAt.toISOString() });
    expect((await api.call('GET', '/v1/clusters', { token: expiring })).status).toBe(200);
    // Made now: an id made while the clock is ahead would carry its time, and ids are monotonic for the whole worker.
    const ids = someIds();
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(expiresAt);
      for (const operation of each(() => true)()) {
        const response = await send(operation, { token: expiring, ids, body: ROUTES[operation.operationId]?.body });
        expectProblem(response, 401, 'unauthorized');
        expect(String(response.body.detail), operation.operationId).toMatch(/expired/);
      }
      // The tenant's key without an expiry still works.
      expect((await api.call('GET', '/v1/clusters', { token: tenant.apiKey })).status).toBe(200);
    } finally {
      vi.useRealTimers();
    }
    expectNoIdAhead();
  });

  it("answers every key of a suspended tenant with 401 on every operation, on every API instance within the key TTL, and 200 again after resuming", async () => {
    const tenant = await api.newTenant();
    const second = await keyOf(tenant.apiKey, { scopes: ['read-only'] });
    const here = otherInstance();
    const there = otherInstance();
    const ttl = there.services.admission?.options.keyTtlMs ?? 0;
    expect(ttl).toBe(30_000);
    const ids = someIds();
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const readAt = Date.now();
      for (const key of [tenant.apiKey, second]) expect((await there.get('/v1/clusters', key)).status).toBe(200);

      // Suspended on one instance: refused there at once, on every operation, with every key.
      await suspendTenant(here.services, tenant.id);
      for (const key of [tenant.apiKey, second]) {
        const refused = await here.get('/v1/clusters', key);
        expectProblem(refused, 401, 'unauthorized');
        expect(String(refused.body.detail)).toMatch(/tenant is suspended/);
      }
      // The other instances trust what they read for the TTL, and no longer.
      vi.setSystemTime(readAt + ttl - 1);
      expect((await there.get('/v1/clusters', second)).status).toBe(200);
      vi.setSystemTime(readAt + ttl);
      for (const key of [tenant.apiKey, second]) expect((await there.get('/v1/clusters', key)).status).toBe(401);
      for (const operation of each(() => true)()) {
        const response = await send(operation, { token: second, ids, body: ROUTES[operation.operationId]?.body });
        expectProblem(response, 401, 'unauthorized');
        expect(String(response.body.detail), operation.operationId).toMatch(/tenant is suspended/);
      }

      // Resumed: at once where it was resumed; within the TTL of what the other instance read (the suspension).
      const suspendedReadAt = Date.now();
      await resumeTenant(here.services, tenant.id);
      for (const key of [tenant.apiKey, second]) expect((await here.get('/v1/clusters', key)).status).toBe(200);
      vi.setSystemTime(suspendedReadAt + ttl - 1);
      expect((await there.get('/v1/clusters', second)).status).toBe(401);
      vi.setSystemTime(suspendedReadAt + ttl);
      for (const key of [tenant.apiKey, second]) expect((await there.get('/v1/clusters', key)).status).toBe(200);
    } finally {
      vi.useRealTimers();
    }
    expectNoIdAhead();
  });
});
