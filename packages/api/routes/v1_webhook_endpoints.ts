import { type OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { WebhookDelivery, WebhookEndpoint, WebhookEndpointCreated, WebhookEndpointOrder, WebhookEndpointUpdate, idPattern } from '#core';
import {
  SECRET_OVERLAP_HOURS,
  createWebhookEndpoint,
  deleteWebhookEndpoint,
  getWebhookEndpoint,
  listWebhookDeliveries,
  listWebhookEndpoints,
  replayWebhookDeliveries,
  rotateWebhookSecret,
  sendTestWebhook,
  updateWebhookEndpoint,
} from '#services';
import { type AppEnv, tenantOf } from '../context.ts';
import { problems } from '../schemas.ts';
import { needs } from '../scopes.ts';

const EndpointIdParam = z.object({
  id: z
    .string()
    .regex(idPattern('webhookEndpoint'), 'must be a webhook endpoint id (whk_...)')
    .openapi({ param: { name: 'id', in: 'path' }, example: 'whk_01jd8x7t5k3m4n5p6q7r8s9t0v' }),
});

const TAGS = ['Webhooks'];

const create = createRoute({
  method: 'post',
  path: '/v1/webhook-endpoints',
  operationId: 'createWebhookEndpoint',
  tags: TAGS,
  summary: 'Create a webhook endpoint',
  description:
    'Kiln POSTs every event of the tenant (or of the types named) that happens from now on to the URL, signed as Standard Webhooks describes (`webhook-id`, `webhook-timestamp`, `webhook-signature`; verify with the `standardwebhooks` package and the `secret`, shown once). ' +
    'Delivery is at least once, with the same `webhook-id` for an event every time; order is not promised. A failed attempt is retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h; an answer of 410, or a day in which every attempt failed, disables the endpoint (with a `webhook_endpoint.disabled` event and its `disabledReason`). ' +
    'The URL must be https and resolve to a public address (no private, loopback, link-local or metadata address, checked again at every delivery; redirects are not followed): 422 otherwise.',
  ...needs('webhooks'),
  request: { body: { required: true, content: { 'application/json': { schema: WebhookEndpointOrder } } } },
  responses: {
    201: {
      description: 'The endpoint, with its signing secret shown this once.',
      headers: { Location: { description: 'The endpoint.', schema: { type: 'string' } } },
      content: { 'application/json': { schema: WebhookEndpointCreated } },
    },
    ...problems(400, 401, 403, 422),
  },
});

const list = createRoute({
  method: 'get',
  path: '/v1/webhook-endpoints',
  operationId: 'listWebhookEndpoints',
  tags: TAGS,
  summary: "List the tenant's webhook endpoints",
  description: 'Every endpoint of the tenant, enabled or not, with why deliveries stopped if they did; never a signing secret.',
  ...needs('read-only'),
  responses: {
    200: { description: 'The endpoints (never their secrets).', content: { 'application/json': { schema: z.object({ items: z.array(WebhookEndpoint) }) } } },
    ...problems(401, 403),
  },
});

const get = createRoute({
  method: 'get',
  path: '/v1/webhook-endpoints/{id}',
  operationId: 'getWebhookEndpoint',
  tags: TAGS,
  summary: 'Get a webhook endpoint',
  description: 'The endpoint, with `disabledReason` and `failingSince` when they apply; never its signing secret.',
  ...needs('read-only'),
  request: { params: EndpointIdParam },
  responses: {
    200: { description: 'The endpoint; `disabledReason` says why Kiln stopped delivering, if it did.', content: { 'application/json': { schema: WebhookEndpoint } } },
    ...problems(400, 401, 403, 404),
  },
});

const update = createRoute({
  method: 'patch',
  path: '/v1/webhook-endpoints/{id}',
  operationId: 'updateWebhookEndpoint',
  tags: TAGS,
  summary: 'Change a webhook endpoint',
  description:
    'Changes the URL (checked as at creation: 422 if Kiln would not deliver there), the event types, the description, or `enabled`. ' +
    '`{"enabled": true}` starts deliveries again after a pause or after Kiln disabled the endpoint: the events that happened meanwhile are delivered then; replay the deliveries that failed before.',
  ...needs('webhooks'),
  request: { params: EndpointIdParam, body: { required: true, content: { 'application/json': { schema: WebhookEndpointUpdate } } } },
  responses: {
    200: { description: 'The endpoint as it is now.', content: { 'application/json': { schema: WebhookEndpoint } } },
    ...problems(400, 401, 403, 404, 409, 422),
  },
});

const remove = createRoute({
  method: 'delete',
  path: '/v1/webhook-endpoints/{id}',
  operationId: 'deleteWebhookEndpoint',
  tags: TAGS,
  summary: 'Delete a webhook endpoint',
  description: 'Nothing more is delivered to it.',
  ...needs('webhooks'),
  request: { params: EndpointIdParam },
  responses: {
    204: { description: 'Deleted.' },
    ...problems(400, 401, 403, 404),
  },
});

const deliveries = createRoute({
  method: 'get',
  path: '/v1/webhook-endpoints/{id}/deliveries',
  operationId: 'listWebhookDeliveries',
  tags: TAGS,
  summary: "List an endpoint's deliveries",
  description: 'The newest 100 deliveries, each with every attempt: when, the status, the latency and the first kilobyte of the answer.',
  ...needs('read-only'),
  request: { params: EndpointIdParam },
  responses: {
    200: { description: 'The deliveries.', content: { 'application/json': { schema: z.object({ items: z.array(WebhookDelivery) }) } } },
    ...problems(400, 401, 403, 404),
  },
});

const rotate = createRoute({
  method: 'post',
  path: '/v1/webhook-endpoints/{id}/secret-rotations',
  operationId: 'rotateWebhookSecret',
  tags: TAGS,
  summary: "Rotate an endpoint's signing secret",
  description: `A new secret, shown once. The one it replaces keeps signing beside it for ${SECRET_OVERLAP_HOURS} hours (each delivery carries a signature per active secret), so the receiver verifies with either while it moves to the new one.`,
  ...needs('webhooks'),
  request: { params: EndpointIdParam },
  responses: {
    201: {
      description: 'The new secret, shown this once.',
      content: {
        'application/json': {
          schema: z.object({
            secret: z.string().meta({ format: 'password' }),
            previousSecretsExpireAt: z.iso.datetime().describe('Until then the earlier secrets sign too.'),
          }),
        },
      },
    },
    ...problems(400, 401, 403, 404, 409),
  },
});

const ReplayOrder = z
  .strictObject({
    eventId: z.string().regex(idPattern('event'), 'must be an event id (evt_...)').optional(),
    from: z.iso.datetime().optional(),
    to: z.iso.datetime().optional(),
  })
  .superRefine((order, context) => {
    const range = order.from !== undefined || order.to !== undefined;
    if (order.eventId !== undefined && range) context.addIssue({ code: 'custom', path: ['eventId'], message: 'name one event or a time range, not both' });
    else if (order.eventId === undefined && (order.from === undefined || order.to === undefined)) context.addIssue({ code: 'custom', path: [order.from === undefined ? 'from' : 'to'], message: 'is required: name one event (eventId) or a time range (from and to)' });
    else if (order.from !== undefined && order.to !== undefined && order.from >= order.to) context.addIssue({ code: 'custom', path: ['to'], message: 'must be after from' });
  })
  .openapi('WebhookReplayOrder', { description: 'One event (`eventId`), or every event that happened in [from, to).' });

const replay = createRoute({
  method: 'post',
  path: '/v1/webhook-endpoints/{id}/replays',
  operationId: 'replayWebhookDeliveries',
  tags: TAGS,
  summary: 'Deliver events again',
  description: 'Puts the deliveries of one event, or of every event in a time range, back to be delivered at once, each with the same `webhook-id` as before; their earlier attempts stay in the log.',
  ...needs('webhooks'),
  request: { params: EndpointIdParam, body: { required: true, content: { 'application/json': { schema: ReplayOrder } } } },
  responses: {
    202: { description: 'The deliveries, due now.', content: { 'application/json': { schema: z.object({ items: z.array(WebhookDelivery) }) } } },
    ...problems(400, 401, 403, 404),
  },
});

const test = createRoute({
  method: 'post',
  path: '/v1/webhook-endpoints/{id}/test-events',
  operationId: 'sendTestWebhook',
  tags: TAGS,
  summary: 'Send a test event',
  description: 'A `webhook.test` event for this endpoint only, signed like every other and delivered on the next run, to check a receiver end to end.',
  ...needs('webhooks'),
  request: { params: EndpointIdParam },
  responses: {
    202: { description: 'The test delivery, due now.', content: { 'application/json': { schema: WebhookDelivery } } },
    ...problems(400, 401, 403, 404),
  },
});

export function registerV1WebhookEndpoints(app: OpenAPIHono<AppEnv>): void {
  app.openapi(create, async (c) => {
    const created = await createWebhookEndpoint(c.get('services'), tenantOf(c), c.req.valid('json'));
    return c.json(created, 201, { location: `/v1/webhook-endpoints/${created.id}`, 'cache-control': 'no-store' });
  });
  app.openapi(list, async (c) => c.json({ items: await listWebhookEndpoints(c.get('services'), tenantOf(c)) }, 200));
  app.openapi(get, async (c) => c.json(await getWebhookEndpoint(c.get('services'), tenantOf(c), c.req.valid('param').id), 200));
  app.openapi(update, async (c) => c.json(await updateWebhookEndpoint(c.get('services'), tenantOf(c), c.req.valid('param').id, c.req.valid('json')), 200));
  app.openapi(remove, async (c) => {
    await deleteWebhookEndpoint(c.get('services'), tenantOf(c), c.req.valid('param').id);
    return c.body(null, 204);
  });
  app.openapi(rotate, async (c) => c.json(await rotateWebhookSecret(c.get('services'), tenantOf(c), c.req.valid('param').id), 201, { 'cache-control': 'no-store' }));
  app.openapi(replay, async (c) => {
    const order = c.req.valid('json');
    const which = order.eventId !== undefined ? { eventId: order.eventId } : { from: order.from ?? '', to: order.to ?? '' };
    return c.json({ items: await replayWebhookDeliveries(c.get('services'), tenantOf(c), c.req.valid('param').id, which) }, 202);
  });
  app.openapi(test, async (c) => c.json(await sendTestWebhook(c.get('services'), tenantOf(c), c.req.valid('param').id), 202));
  app.openapi(deliveries, async (c) => c.json({ items: await listWebhookDeliveries(c.get('services'), tenantOf(c), c.req.valid('param').id) }, 200));
}
