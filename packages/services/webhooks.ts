import { randomBytes } from 'node:crypto';
import { NotFoundError, UnprocessableError, type WebhookDelivery, type WebhookEndpoint, type WebhookEndpointCreated, type WebhookEndpointOrder, firstIdAt, newId } from '#core';
import type { WebhookDeliveryRecord, WebhookEndpointRecord } from '#store';
import { resolveAllowed, urlRefusal } from './webhook-address.ts';
import type { KilnServices } from './context.ts';

/** The encryption context a webhook secret is sealed under: it opens only for its tenant, endpoint and purpose. */
export function webhookSecretContext(endpoint: Pick<WebhookEndpointRecord, 'tenantId' | 'id'>): Record<string, string> {
  return { tenantId: endpoint.tenantId, webhookEndpointId: endpoint.id, purpose: 'webhook-secret' };
}

function endpointView(record: WebhookEndpointRecord): WebhookEndpoint {
  return {
    id: record.id,
    url: record.url,
    eventTypes: record.eventTypes,
    ...(record.description === undefined ? {} : { description: record.description }),
    enabled: record.enabled,
    ...(record.disabledReason === undefined ? {} : { disabledReason: record.disabledReason }),
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  };
}

function deliveryView(record: WebhookDeliveryRecord): WebhookDelivery {
  return {
    eventId: record.eventId,
    eventType: record.eventType,
    state: record.state,
    attempts: record.attempts,
    ...(record.nextAttemptAt === undefined ? {} : { nextAttemptAt: record.nextAttemptAt }),
    createdAt: record.createdAt,
  };
}

/**
 * A webhook endpoint for the tenant: the URL must be https (http to loopback only where local mode allows it) and
 * resolve to no private, loopback, link-local or metadata address (checked again at every delivery). Its `whsec_`
 * signing secret is shown once and kept only sealed. It receives the events that happen from now on.
 */
export async function createWebhookEndpoint(services: KilnServices, tenantId: string, order: WebhookEndpointOrder): Promise<WebhookEndpointCreated> {
  const policy = { allowLoopback: services.webhooks?.allowLoopback ?? false };
  const refused = urlRefusal(order.url, policy);
  const resolved = refused === undefined ? await resolveAllowed(new URL(order.url).hostname, policy) : { refused: `the URL ${refused}` };
  if ('refused' in resolved) throw new UnprocessableError(`Kiln does not deliver there: ${resolved.refused}.`, [{ pointer: '/url', detail: resolved.refused }]);
  const now = new Date();
  const id = newId('webhookEndpoint');
  const secret = `whsec_${randomBytes(24).toString('base64')}`;
  const record: WebhookEndpointRecord = {
    tenantId,
    id,
    url: order.url,
    eventTypes: order.eventTypes ?? [],
    ...(order.description === undefined ? {} : { description: order.description }),
    enabled: true,
    secrets: [{ sealed: await services.sealer.seal(Buffer.from(secret), webhookSecretContext({ tenantId, id })) }],
    cursor: firstIdAt('event', now),
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
    version: 1,
  };
  await services.store.createWebhookEndpoint(record);
  return { ...endpointView(record), secret };
}

export async function listWebhookEndpoints(services: KilnServices, tenantId: string): Promise<WebhookEndpoint[]> {
  return (await services.store.listWebhookEndpoints(tenantId)).map(endpointView);
}

async function findEndpoint(services: KilnServices, tenantId: string, id: string): Promise<WebhookEndpointRecord> {
  const record = await services.store.getWebhookEndpoint(tenantId, id);
  if (record === undefined) throw new NotFoundError('webhook endpoint', id);
  return record;
}

export async function getWebhookEndpoint(services: KilnServices, tenantId: string, id: string): Promise<WebhookEndpoint> {
  return endpointView(await findEndpoint(services, tenantId, id));
}

export async function deleteWebhookEndpoint(services: KilnServices, tenantId: string, id: string): Promise<void> {
  if (!(await services.store.deleteWebhookEndpoint(tenantId, id))) throw new NotFoundError('webhook endpoint', id);
}

/** The endpoint's deliveries, newest event first, each with its attempts. */
export async function listWebhookDeliveries(services: KilnServices, tenantId: string, id: string): Promise<WebhookDelivery[]> {
  await findEndpoint(services, tenantId, id);
  return (await services.store.listWebhookDeliveries(tenantId, id)).map(deliveryView);
}
