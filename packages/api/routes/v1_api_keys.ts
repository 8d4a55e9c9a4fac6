import { type OpenAPIHono, createRoute } from '@hono/zod-openapi';
import { ApiKeyCreated, ApiKeyList, ApiKeyOrder } from '#core';
import { createApiKey, listApiKeys, revokeApiKey } from '#services';
import { type AppEnv, tenantKeyOf, tenantOf } from '../context.ts';
import { ApiKeyIdParam, problems } from '../schemas.ts';
import { needs } from '../scopes.ts';

const list = createRoute({
  method: 'get',
  path: '/v1/api-keys',
  operationId: 'listApiKeys',
  tags: ['API keys'],
  summary: "List the tenant's API keys",
  description: 'Every key the tenant holds, oldest first: its id, the first characters of the key, what it is for, its scopes and expiry, when it was created and last used. The keys themselves are never shown again.',
  ...needs('read-only'),
  responses: {
    200: { description: "The tenant's keys.", content: { 'application/json': { schema: ApiKeyList } } },
    ...problems(401, 403),
  },
});

const create = createRoute({
  method: 'post',
  path: '/v1/api-keys',
  operationId: 'createApiKey',
  tags: ['API keys'],
  summary: 'Create an API key',
  description:
    'A further key for the tenant, shown once in `apiKey`; Kiln keeps only its hash. To rotate a key: create a new one, move your clients to it, revoke the old one. ' +
    "The new key may do at most what the calling key may (`scopes`, the calling key's when absent) and lives no longer (`expiresAt`, the calling key's expiry when absent): 403 naming what it lacks otherwise.",
  ...needs('keys'),
  request: { body: { required: true, content: { 'application/json': { schema: ApiKeyOrder } } } },
  responses: {
    201: {
      description: 'The new key, shown this once.',
      headers: { Location: { description: 'The key, without its secret part.', schema: { type: 'string' } } },
      content: { 'application/json': { schema: ApiKeyCreated } },
    },
    ...problems(400, 401, 403),
  },
});

const revoke = createRoute({
  method: 'delete',
  path: '/v1/api-keys/{id}',
  operationId: 'revokeApiKey',
  tags: ['API keys'],
  summary: 'Revoke an API key',
  description:
    "The next request with the key gets 401. The tenant's last key, and its last unexpired key with the keys scope, cannot be revoked (409): create another one first. A key with a scope the calling key lacks cannot be revoked with it (403).",
  ...needs('keys'),
  request: { params: ApiKeyIdParam },
  responses: {
    204: { description: 'The key is revoked.' },
    ...problems(400, 401, 403, 404, 409),
  },
});

export function registerV1ApiKeys(app: OpenAPIHono<AppEnv>): void {
  app.openapi(list, async (c) => c.json({ items: await listApiKeys(c.get('services'), tenantOf(c)) }, 200));
  app.openapi(create, async (c) => {
    const created = await createApiKey(c.get('services'), tenantKeyOf(c), c.req.valid('json'));
    return c.json(created, 201, { location: `/v1/api-keys/${created.id}`, 'cache-control': 'no-store' });
  });
  app.openapi(revoke, async (c) => {
    await revokeApiKey(c.get('services'), tenantKeyOf(c), c.req.valid('param').id);
    return c.body(null, 204);
  });
}
