import { type OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { EVENT_TYPES, EventFeedPage, TypedTenantEvent, idPattern } from '#core';
import { EVENT_FEED_SETTLE_SECONDS, listTenantEvents } from '#services';
import { type AppEnv, tenantOf } from '../context.ts';
import { problems } from '../schemas.ts';
import { needs } from '../scopes.ts';

const EventFeedQuery = z.object({
  after: z
    .string()
    .regex(idPattern('event'), 'must be an event id (evt_...): the nextCursor of the previous page')
    .optional()
    .openapi({ description: 'Start after this event: the `nextCursor` of the previous page. Without it the feed starts at its oldest event (events are kept 90 days).' }),
  types: z
    .string()
    .optional()
    .transform((value, context) => {
      const types = value === undefined ? [] : value.split(',').map((type) => type.trim()).filter((type) => type !== '');
      const unknown = types.filter((type) => !(EVENT_TYPES as readonly string[]).includes(type));
      if (unknown.length > 0) context.addIssue({ code: 'custom', message: `${unknown.join(', ')}: not an event type (${EVENT_TYPES.join(', ')})` });
      return types;
    })
    .openapi({ type: 'string', description: 'Only these event types, comma-separated.', example: 'cluster.phase_changed,node.replaced' }),
  limit: z.coerce.number().int().min(1).max(500).default(100).openapi({ description: 'At most this many events (1 to 500).' }),
});

const route = createRoute({
  method: 'get',
  path: '/v1/events',
  operationId: 'listEvents',
  tags: ['Events'],
  summary: "The tenant's event feed",
  description:
    `Every event of every cluster of the tenant, oldest first, for integrators who pull. Pass the answer's \`nextCursor\` as \`after\` to read on: pages have no gaps and no repeats. ` +
    `An event joins the feed ${EVENT_FEED_SETTLE_SECONDS} s after it happened, once every change that could sort before it has been written, so a cursor never skips a late one. ` +
    '`more` says whether another page is ready now; when it is false, ask again later with the same cursor.',
  ...needs('read-only'),
  request: { query: EventFeedQuery },
  responses: {
    // Documented with each type's data schema; read with the generic shape.
    200: { description: 'A page of the feed.', content: { 'application/json': { schema: EventFeedPage.extend({ items: z.array(TypedTenantEvent) }) } } },
    ...problems(400, 401, 403),
  },
});

export function registerV1EventsList(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const query = c.req.valid('query');
    const page = await listTenantEvents(c.get('services'), tenantOf(c), { ...(query.after === undefined ? {} : { after: query.after }), types: query.types, limit: query.limit });
    return c.json(page, 200);
  });
}
