import { z } from 'zod';
import { setOf } from './cluster-spec.ts';
import { EVENT_TYPES } from './resources.ts';

export const WebhookEndpointOrder = z
  .strictObject({
    url: z.string().max(2000).describe('Where Kiln POSTs the events: https, resolving to a public address (checked at every delivery).'),
    eventTypes: setOf(z.enum(EVENT_TYPES)).optional().describe('Only these event types; every type when absent.'),
    description: z.string().min(1).max(200).optional(),
    enabled: z.boolean().optional().describe('Whether Kiln delivers to it (true when absent).'),
  })
  .meta({ id: 'WebhookEndpointOrder' });
export type WebhookEndpointOrder = z.infer<typeof WebhookEndpointOrder>;

export const WebhookEndpointUpdate = z
  .strictObject({
    url: WebhookEndpointOrder.shape.url.optional(),
    eventTypes: setOf(z.enum(EVENT_TYPES)).optional().describe('Only these event types; every type when empty.'),
    description: z.string().min(1).max(200).nullable().optional().describe('null removes it.'),
    enabled: z
      .boolean()
      .optional()
      .describe(
        'false pauses deliveries; true starts them again, for an endpoint paused or disabled by Kiln alike: the events that happened meanwhile are delivered then, and its failing streak starts over.',
      ),
  })
  .meta({ id: 'WebhookEndpointUpdate', description: 'The fields to change; the others stay as they are.' });
export type WebhookEndpointUpdate = z.infer<typeof WebhookEndpointUpdate>;

export const WebhookEndpoint = z
  .object({
    id: z.string().readonly(),
    url: z.string(),
    eventTypes: z.array(z.string()).describe('Only these event types; every type when empty.'),
    description: z.string().optional(),
    enabled: z.boolean(),
    disabledReason: z.string().optional().describe('Why deliveries stopped: a 410 answer, a day in which every attempt failed, or a pause by the tenant.').readonly(),
    failingSince: z.iso.datetime().optional().describe('Since when every attempt has failed (a day of that disables the endpoint).').readonly(),
    createdAt: z.iso.datetime().readonly(),
    updatedAt: z.iso.datetime().readonly(),
  })
  .meta({ id: 'WebhookEndpoint' });
export type WebhookEndpoint = z.infer<typeof WebhookEndpoint>;

export const WebhookEndpointCreated = WebhookEndpoint.extend({
  secret: z.string().describe('The whsec_ signing secret, shown once: verify deliveries with it (Standard Webhooks).').meta({ format: 'password' }),
}).meta({ id: 'WebhookEndpointCreated' });
export type WebhookEndpointCreated = z.infer<typeof WebhookEndpointCreated>;

export const WebhookDelivery = z
  .object({
    eventId: z.string().describe('Also the webhook-id header of every attempt.'),
    eventType: z.string(),
    state: z.enum(['pending', 'succeeded', 'failed']),
    attempts: z.array(
      z.object({
        at: z.iso.datetime(),
        status: z.int().optional().describe('The receiver\'s status; absent when no answer came.'),
        latencyMs: z.number(),
        response: z.string().describe('The first kilobyte of the answer, or why there was none.'),
        ok: z.boolean(),
      }),
    ),
    nextAttemptAt: z.iso.datetime().optional(),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'WebhookDelivery' });
export type WebhookDelivery = z.infer<typeof WebhookDelivery>;
