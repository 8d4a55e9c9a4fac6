import { type KilnServices, listTenantEvents, webhookSecretContext } from '#services';
import { VersionConflictError, type WebhookDeliveryRecord, type WebhookEndpointRecord } from '#store';
import { attemptDelivery } from './deliver.ts';

/**
 * When the next attempt comes after a failed one: the first goes at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and
 * 10 h later, about a day and a quarter in all; a delivery whose eighth attempt fails is failed (and replayable).
 */
export const RETRY_SCHEDULE_SECONDS = [5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600] as const;
/** Deliveries attempted per endpoint and run, so one slow receiver cannot hold the others up for long. */
const ATTEMPTS_PER_RUN = 50;
/** Events taken into deliveries per transaction (with the endpoint's cursor; DynamoDB allows 100 items). */
const ENQUEUE_BATCH = 90;

export interface DeliveryReport {
  enqueued: number;
  attempted: number;
  succeeded: number;
  failed: number;
  /** Endpoints disabled by this run (a 410 answer). */
  disabled: string[];
}

/**
 * Takes the endpoint's new events from the tenant's feed into deliveries, moving its cursor in the same transaction:
 * the feed is the outbox (every event is written with its change), so nothing is lost when a worker dies, and a
 * second worker racing for the same events loses the version check and takes none.
 */
async function enqueue(services: KilnServices, endpoint: WebhookEndpointRecord, now: Date): Promise<{ endpoint: WebhookEndpointRecord; enqueued: number }> {
  let current = endpoint;
  let enqueued = 0;
  for (;;) {
    const page = await listTenantEvents(services, current.tenantId, { after: current.cursor, types: current.eventTypes, limit: ENQUEUE_BATCH }, now);
    if (page.items.length === 0) return { endpoint: current, enqueued };
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
      current = await services.store.saveWebhookEndpoint({ ...current, cursor: page.nextCursor ?? current.cursor }, current.version, deliveries);
    } catch (error) {
      if (error instanceof VersionConflictError) return { endpoint: current, enqueued };
      throw error;
    }
    enqueued += deliveries.length;
    if (!page.more) return { endpoint: current, enqueued };
  }
}

/**
 * One run of the delivery worker: for every enabled endpoint, new events become deliveries and the deliveries due are
 * attempted (at least once: an attempt whose result was not recorded is made again, with the same webhook-id). A 2xx
 * answer delivers; 410 disables the endpoint with its reason; anything else is tried again on the schedule.
 */
export async function deliverWebhooks(services: KilnServices, now = new Date()): Promise<DeliveryReport> {
  const policy = services.webhooks ?? { allowLoopback: false };
  const report: DeliveryReport = { enqueued: 0, attempted: 0, succeeded: 0, failed: 0, disabled: [] };
  for (const { tenantId, id } of await services.store.listEnabledWebhookEndpoints()) {
    const stored = await services.store.getWebhookEndpoint(tenantId, id);
    if (stored?.enabled !== true) continue;
    const { endpoint, enqueued } = await enqueue(services, stored, now);
    report.enqueued += enqueued;
    const due = (await services.store.listDueWebhookDeliveries(tenantId, id, now)).slice(0, ATTEMPTS_PER_RUN);
    if (due.length === 0) continue;
    const active = endpoint.secrets.filter((secret) => secret.expiresAt === undefined || Date.parse(secret.expiresAt) > now.getTime());
    const secrets = await Promise.all(active.map(async (secret) => Buffer.from(await services.sealer.unseal(secret.sealed, webhookSecretContext(endpoint))).toString('utf8')));
    for (const delivery of due) {
      const result = await attemptDelivery({ url: endpoint.url, secrets }, { id: delivery.eventId, payload: delivery.payload }, policy, now);
      report.attempted += 1;
      const attempts = [...delivery.attempts, result];
      const { nextAttemptAt: _due, ...rest } = delivery;
      if (result.ok) {
        await services.store.saveWebhookDelivery({ ...rest, attempts, state: 'succeeded' });
        report.succeeded += 1;
        continue;
      }
      if (result.status === 410) {
        await services.store.saveWebhookDelivery({ ...rest, attempts, state: 'failed' });
        const latest = (await services.store.getWebhookEndpoint(tenantId, id)) ?? endpoint;
        await services.store.saveWebhookEndpoint({ ...latest, enabled: false, disabledReason: `The endpoint answered 410 Gone at ${result.at}: Kiln stopped delivering to it.` }, latest.version);
        report.disabled.push(id);
        report.failed += 1;
        break;
      }
      const wait = RETRY_SCHEDULE_SECONDS[attempts.length - 1];
      if (wait === undefined) {
        await services.store.saveWebhookDelivery({ ...rest, attempts, state: 'failed' });
        report.failed += 1;
      } else {
        await services.store.saveWebhookDelivery({ ...rest, attempts, nextAttemptAt: new Date(now.getTime() + wait * 1000).toISOString() });
      }
    }
  }
  return report;
}
