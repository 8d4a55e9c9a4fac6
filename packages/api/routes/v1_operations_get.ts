import { type OpenAPIHono, createRoute } from '@hono/zod-openapi';
import { Operation } from '#core';
import { findOperation } from '#services';
import { type AppEnv, tenantOf } from '../context.ts';
import { OperationIdParam, problems } from '../schemas.ts';
import { needs } from '../scopes.ts';

const route = createRoute({
  method: 'get',
  path: '/v1/operations/{id}',
  operationId: 'getOperation',
  tags: ['Operations'],
  summary: 'Get an operation',
  description: 'Its state, each step with its timestamps and outputs, and the problem when it failed.',
  ...needs('read-only'),
  request: { params: OperationIdParam },
  responses: {
    200: { description: 'The operation.', content: { 'application/json': { schema: Operation } } },
    ...problems(400, 401, 403, 404),
  },
});

export function registerV1OperationsGet(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const operation = await findOperation(c.get('services'), tenantOf(c), c.req.valid('param').id);
    return c.json(operation, 200);
  });
}
