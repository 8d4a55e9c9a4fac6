import { type KilnServices, listTenantEvents } from '#services';
import { VersionConflictError, type WebhookDeliveryRecord, type WebhookEndpointRecord } from '#store';
import type { WebhookQueue } from './queue.ts';

/**
 * How long a dispatched delivery is left to its sender before the dispatcher sends it again: the queue's visibility
 * timeout, so a message a sender took and never finished is back in the queue by then too.
 */
export const DISPATCH_LEASE_SECONDS = 360;
/** Deliveries dispatched per endpoint and run, so one endpoint's backlog cannot crowd out the others. */
const DISPATCH_PER_ENDPOINT = 50;
/** Events taken into deliveries per transaction (with the endpoint's cursor; DynamoDB allows 100 items). */
const ENQUEUE_BATCH = 90;

export interface DispatchReport {
  /** Events that became deliveries in this run. */
  enqueued: number;
  /** Deliveries put on the queue for a sender. */
  dispatched: number;
}

/**
 * Takes the endpoint's new events from the tenant's feed into deliveries, moving its cursor in the same transaction:
 * the feed is the outbox (every event is written with its change), so nothing is lost when a dispatcher dies, and a
 * second one racing for the same events loses the version check and takes none.
 */
async function enqueue(services: KilnServices, endpoint: WebhookEndpointRecord, now: Date): Promise<number> {
  let current = endpoint;
  let enqueued = 0;
  for (;;) {
    const page = await listTenantEvents(services, current.tenantId, { after: current.cursor, types: current.eventTypes, limit: ENQUEUE_BATCH }, now);
    if (page.items.length === 0) return enqueued;
    const deliveries: WebhookDeliveryRecord[] = page.items.map((event) => ({
      tenantId: current.tenantId,
      endpointId: current.id,
      eventId: event.id,
      eventType: event.type,
      payload: JSON.stringify(event),
      state: 'pending',
      attempts: [],
      nextAttemptAt: now.toISOString(),
      createdAt: now.toISOString(),
    }));
    try {
      current = await services.store.saveWebhookEndpoint({ ...current, cursor: page.nextCursor ?? current.cursor }, current.version, { deliveries });
    } catch (error) {
      if (error instanceof VersionConflictError) return enqueued;
      throw error;
    }
    enqueued += deliveries.length;
    if (!page.more) return enqueued;
  }
}

/**
 * One run of the dispatcher (scheduled every minute): for every enabled endpoint, new events become deliveries, and
 * the deliveries that are due are leased (so the next run does not send them again while a sender has them) and put
 * on the queue, one message each. The senders attempt them; what they do not finish comes back, from the queue after
 * its visibility timeout or from here when the lease ends.
 */
export async function dispatchWebhooks(services: KilnServices, queue: WebhookQueue, now = new Date()): Promise<DispatchReport> {
  const report: DispatchReport = { enqueued: 0, dispatched: 0 };
  const leasedUntil = new Date(now.getTime() + DISPATCH_LEASE_SECONDS * 1000).toISOString();
  for (const { tenantId, id } of await services.store.listEnabledWebhookEndpoints()) {
    const endpoint = await services.store.getWebhookEndpoint(tenantId, id);
    if (endpoint?.enabled !== true) continue;
    report.enqueued += await enqueue(services, endpoint, now);
    const due = (await services.store.listDueWebhookDeliveries(tenantId, id, now)).slice(0, DISPATCH_PER_ENDPOINT);
    const leased: WebhookDeliveryRecord[] = [];
    for (const delivery of due) {
      // Another dispatcher leased it first: that one sends it.
      if (await services.store.leaseWebhookDelivery(delivery, leasedUntil)) leased.push(delivery);
    }
    await queue.send(leased.map((delivery) => ({ tenantId, endpointId: id, eventId: delivery.eventId })));
    report.dispatched += leased.length;
  }
  return report;
}
