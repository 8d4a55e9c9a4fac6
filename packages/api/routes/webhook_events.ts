import { type OpenAPIHono, z } from '@hono/zod-openapi';
import { EVENT_TYPES, TYPED_EVENTS } from '#core';
import type { AppEnv } from '../context.ts';

const DeliveryHeaders = z.object({
  'webhook-id': z.string().describe('The event id: the same on every attempt and replay, so a receiver drops repeats by it.'),
  'webhook-timestamp': z.string().describe('When this attempt was signed, in seconds since the epoch.'),
  'webhook-signature': z.string().describe('v1,<base64 HMAC-SHA256> per active secret, separated by spaces (two during a rotation\'s overlap).'),
});

const camel = (type: string) =>
  type
    .split(/[._]/)
    .map((part, index) => (index === 0 ? part : `${part.charAt(0).toUpperCase()}${part.slice(1)}`))
    .join('');

/**
 * The document's `webhooks` section: one entry per event type, with the body Kiln POSTs (the event, its data
 * version 1) and the Standard Webhooks headers, so a receiver's types can be generated like a client's.
 */
export function registerWebhookEvents(app: OpenAPIHono<AppEnv>): void {
  for (const type of EVENT_TYPES) {
    app.openAPIRegistry.registerWebhook({
      method: 'post',
      path: type,
      operationId: `${camel(type)}Webhook`,
      tags: ['Webhooks'],
      summary: `The ${type} event`,
      description:
        'POSTed to every enabled endpoint whose eventTypes take it, at least once and in no promised order, signed as Standard Webhooks describes (verify with the `standardwebhooks` package and the endpoint\'s secret).',
      request: { headers: DeliveryHeaders, body: { required: true, content: { 'application/json': { schema: TYPED_EVENTS[type] } } } },
      responses: {
        200: { description: 'Any 2xx answer delivers the event.' },
        410: { description: 'Gone: Kiln disables the endpoint. Any other answer, or none within 10 s, is retried on the schedule.' },
      },
    });
  }
}
