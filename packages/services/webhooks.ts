import { randomBytes } from 'node:crypto';
import { NotFoundError, UnprocessableError, type WebhookDelivery, type WebhookEndpoint, type WebhookEndpointCreated, type WebhookEndpointOrder, type WebhookEndpointUpdate, firstIdAt, newId } from '#core';
import type { WebhookDeliveryRecord, WebhookEndpointRecord } from '#store';
import { resolveAllowed, urlRefusal, webhookSecretContext } from '#webhooks/shared';
import type { KilnServices } from './context.ts';

/** A Standard Webhooks secret: `whsec_` and 24 random bytes in base64. */
function newSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

function endpointView(record: WebhookEndpointRecord): WebhookEndpoint {
  return {
    id: record.id,
    url: record.url,
    eventTypes: record.eventTypes,
    ...(record.description === undefined ? {} : { description: record.description }),
    enabled: record.enabled,
    ...(record.disabledReason === undefined ? {} : { disabledReason: record.disabledReason }),
    ...(record.failingSince === undefined ? {} : { failingSince: record.failingSince }),
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

/** 422 unless Kiln would deliver to the URL now (it checks again at every attempt). */
async function checkDeliverable(services: KilnServices, url: string): Promise<void> {
  const policy = services.webhooks ?? { allowLoopback: false };
  const refused = urlRefusal(url, policy);
  const resolved = refused === undefined ? await resolveAllowed(new URL(url).hostname, policy) : { refused: `the URL ${refused}` };
  if ('refused' in resolved) throw new UnprocessableError(`Kiln does not deliver there: ${resolved.refused}.`, [{ pointer: '/url', detail: resolved.refused }]);
}

/**
 * A webhook endpoint for the tenant: the URL must be https (http to loopback only where local mode allows it) and
 * resolve to no private, loopback, link-local or metadata address (checked again at every delivery). Its `whsec_`
 * signing secret is shown once and kept only sealed. It receives the events that happen from now on.
 */
export async function createWebhookEndpoint(services: KilnServices, tenantId: string, order: WebhookEndpointOrder): Promise<WebhookEndpointCreated> {
  await checkDeliverable(services, order.url);
  const now = new Date();
  const id = newId('webhookEndpoint');
  const secret = newSecret();
  const record: WebhookEndpointRecord = {
    tenantId,
    id,
    url: order.url,
    eventTypes: order.eventTypes ?? [],
    ...(order.description === undefined ? {} : { description: order.description }),
    enabled: order.enabled ?? true,
    ...(order.enabled === false ? { disabledReason: `Created paused at ${now.toISOString()}.` } : {}),
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

/**
 * Changes the endpoint's URL (checked as at creation), event types, description, or whether it is enabled. Enabling
 * clears why it was disabled and its failing streak; its cursor stayed where deliveries stopped, so the events since
 * then are delivered.
 */
export async function updateWebhookEndpoint(services: KilnServices, tenantId: string, id: string, change: WebhookEndpointUpdate): Promise<WebhookEndpoint> {
  const record = await findEndpoint(services, tenantId, id);
  if (change.url !== undefined) await checkDeliverable(services, change.url);
  const { description: _description, disabledReason: _reason, failingSince: _failing, ...rest } = record;
  const description = change.description === null ? undefined : (change.description ?? record.description);
  const enabled = change.enabled ?? record.enabled;
  const kept = enabled === record.enabled ? { disabledReason: record.disabledReason, failingSince: record.failingSince } : {};
  const disabledReason = enabled ? undefined : (kept.disabledReason ?? `Paused by the tenant at ${new Date().toISOString()}.`);
  const next: WebhookEndpointRecord = {
    ...rest,
    ...(change.url === undefined ? {} : { url: change.url }),
    ...(change.eventTypes === undefined ? {} : { eventTypes: change.eventTypes }),
    ...(description === undefined ? {} : { description }),
    enabled,
    ...(disabledReason === undefined ? {} : { disabledReason }),
    ...(kept.failingSince === undefined ? {} : { failingSince: kept.failingSince }),
  };
  return endpointView(await services.store.saveWebhookEndpoint(next, record.version));
}

export async function deleteWebhookEndpoint(services: KilnServices, tenantId: string, id: string): Promise<void> {
  if (!(await services.store.deleteWebhookEndpoint(tenantId, id))) throw new NotFoundError('webhook endpoint', id);
}

/** The endpoint's deliveries, newest event first, each with its attempts. */
export async function listWebhookDeliveries(services: KilnServices, tenantId: string, id: string): Promise<WebhookDelivery[]> {
  await findEndpoint(services, tenantId, id);
  return (await services.store.listWebhookDeliveries(tenantId, id)).map(deliveryView);
}

/** How long the secrets a rotation replaces keep signing, so receivers can move to the new one. */
export const SECRET_OVERLAP_HOURS = 24;

/**
 * A new signing secret, shown once. The secrets it replaces keep signing beside it for SECRET_OVERLAP_HOURS (every
 * delivery carries one signature per active secret), so a receiver verifies with either while it moves.
 */
export async function rotateWebhookSecret(services: KilnServices, tenantId: string, id: string): Promise<{ secret: string; previousSecretsExpireAt: string }> {
  const record = await findEndpoint(services, tenantId, id);
  const now = new Date();
  const previousSecretsExpireAt = new Date(now.getTime() + SECRET_OVERLAP_HOURS * 3600_000).toISOString();
  const secret = newSecret();
  const kept = record.secrets
    .filter((entry) => entry.expiresAt === undefined || Date.parse(entry.expiresAt) > now.getTime())
    .map((entry) => ({ sealed: entry.sealed, expiresAt: entry.expiresAt !== undefined && entry.expiresAt < previousSecretsExpireAt ? entry.expiresAt : previousSecretsExpireAt }));
  await services.store.saveWebhookEndpoint({ ...record, secrets: [{ sealed: await services.sealer.seal(Buffer.from(secret), webhookSecretContext(record)) }, ...kept] }, record.version);
  return { secret, previousSecretsExpireAt };
}

/**
 * Delivers the endpoint's events again with the same webhook-id each: one event, or every event in a time range
 * (by when it happened). The deliveries go back to pending, due now, keeping their earlier attempts.
 */
export async function replayWebhookDeliveries(services: KilnServices, tenantId: string, id: string, which: { eventId: string } | { from: string; to: string }): Promise<WebhookDelivery[]> {
  await findEndpoint(services, tenantId, id);
  const now = new Date().toISOString();
  const chosen =
    'eventId' in which
      ? (await services.store.listWebhookDeliveriesBetween(tenantId, id, which.eventId, `${which.eventId}~`))
      : await services.store.listWebhookDeliveriesBetween(tenantId, id, firstIdAt('event', new Date(which.from)), firstIdAt('event', new Date(which.to)));
  if ('eventId' in which && chosen.length === 0) throw new NotFoundError('delivery of event', which.eventId);
  const replayed = chosen.map((delivery): WebhookDeliveryRecord => ({ ...delivery, state: 'pending', nextAttemptAt: now }));
  for (const delivery of replayed) await services.store.saveWebhookDelivery(delivery);
  return replayed.map(deliveryView);
}

/**
 * A test delivery for the endpoint (type `webhook.test`, signed like every other), attempted by the worker's next run
 * like any other delivery, so the receiver can be checked end to end.
 */
export async function sendTestWebhook(services: KilnServices, tenantId: string, id: string): Promise<WebhookDelivery> {
  const endpoint = await findEndpoint(services, tenantId, id);
  const now = new Date().toISOString();
  const eventId = newId('event');
  const delivery: WebhookDeliveryRecord = {
    tenantId,
    endpointId: endpoint.id,
    eventId,
    eventType: 'webhook.test',
    payload: JSON.stringify({ id: eventId, type: 'webhook.test', tenantId, occurredAt: now, data: { endpointId: endpoint.id } }),
    state: 'pending',
    attempts: [],
    nextAttemptAt: now,
    createdAt: now,
  };
  await services.store.saveWebhookDelivery(delivery);
  return deliveryView(delivery);
}
