import { type OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { USAGE_GRANULARITIES, UsageReport } from '#core';
import { USAGE_SETTLE_MINUTES, getUsage } from '#services';
import { type AppEnv, tenantOf } from '../context.ts';
import { problems } from '../schemas.ts';
import { needs } from '../scopes.ts';

const HOUR_MS = 3600_000;
/** How far one request reaches: a month of hours, or a year and a bit of days. */
const MAX_PERIODS = { hour: 31 * 24, day: 400 } as const;

const UsageQuery = z
  .object({
    from: z.iso.datetime({ offset: true }).openapi({ description: 'The first period\'s start: on the hour (granularity hour) or at 00:00 UTC (day).', example: '2026-11-01T00:00:00Z' }),
    to: z.iso.datetime({ offset: true }).openapi({ description: 'The end, not included, aligned like `from`.', example: '2026-12-01T00:00:00Z' }),
    granularity: z.enum(USAGE_GRANULARITIES).default('hour').openapi({ description: 'Per hour, or per UTC day (the sum of its hours).' }),
  })
  .superRefine((query, context) => {
    const step = query.granularity === 'hour' ? HOUR_MS : 24 * HOUR_MS;
    const from = Date.parse(query.from);
    const to = Date.parse(query.to);
    const unit = query.granularity === 'hour' ? 'on the hour' : 'at 00:00 UTC';
    if (from % step !== 0) context.addIssue({ code: 'custom', path: ['from'], message: `must be ${unit} for granularity ${query.granularity}` });
    if (to % step !== 0) context.addIssue({ code: 'custom', path: ['to'], message: `must be ${unit} for granularity ${query.granularity}` });
    if (to <= from) context.addIssue({ code: 'custom', path: ['to'], message: 'must be after from' });
    else if ((to - from) / step > MAX_PERIODS[query.granularity]) context.addIssue({ code: 'custom', path: ['to'], message: `must be at most ${MAX_PERIODS[query.granularity]} ${query.granularity}s after from` });
  });

const route = createRoute({
  method: 'get',
  path: '/v1/usage',
  operationId: 'getUsage',
  tags: ['Usage'],
  summary: "The tenant's usage",
  description:
    'Node-seconds (and node-hours) per cluster, role, pool and instance type, per hour or per UTC day: each machine counts from the health poll that first saw it running to the one that no longer did, or its cluster\'s deletion. ' +
    `An hour is reported ${USAGE_SETTLE_MINUTES} minutes after it ended, with a \`usage.reported\` event carrying the same figures; \`reportedThrough\` says how far that has got, and later periods are not listed yet.`,
  ...needs('read-only'),
  request: { query: UsageQuery },
  responses: {
    200: { description: 'The reported periods in the range.', content: { 'application/json': { schema: UsageReport } } },
    ...problems(400, 401, 403),
  },
});

export function registerV1UsageGet(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const query = c.req.valid('query');
    return c.json(await getUsage(c.get('services'), tenantOf(c), { from: new Date(query.from), to: new Date(query.to), granularity: query.granularity }), 200);
  });
}
