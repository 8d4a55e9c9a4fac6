import { tenantWideEvent } from '#core';
import { type KilnServices, listTenantEvents, webhookSecretContext } from '#services';
import { VersionConflictError, type WebhookDeliveryRecord, type WebhookEndpointRecord } from '#store';
import { type AttemptResult, attemptDelivery } from './deliver.ts';

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
  /** Endpoints disabled by this run (a 410 answer, or a day of failures). */
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
      current = await services.store.saveWebhookEndpoint({ ...current, cursor: page.nextCursor ?? current.cursor }, current.version, { deliveries });
    } catch (error) {
      if (error instanceof VersionConflictError) return { endpoint: current, enqueued };
      throw error;
    }
    enqueued += deliveries.length;
    if (!page.more) return { endpoint: current, enqueued };
  }
}

/** How long every attempt to an endpoint may fail, with no success between, before Kiln disables it. */
export const DISABLE_AFTER_FAILING_HOURS = 24;

/** What one run's attempts to an endpoint came to. */
interface RunOutcome {
  /** Whether any attempt of the run succeeded: the receiver is alive, and earlier failures no longer count. */
  succeeded: boolean;
  /** The first failure after the run's last success (or of the run, if none succeeded). */
  failingSince?: string;
  last?: AttemptResult;
  gone?: AttemptResult;
}

function lastAnswer(attempt: AttemptResult): string {
  return attempt.status === undefined ? attempt.response : `${attempt.status}${attempt.response === '' ? '' : ` ${JSON.stringify(attempt.response.slice(0, 100))}`}`;
}

/**
 * Records what the run learned about the endpoint: a success clears its failing streak; a streak of a day, or a 410,
 * disables it with a reason and a webhook_endpoint.disabled event in the same write. Lost races (the owner changed
 * the endpoint meanwhile) are read again and decided again.
 */
async function settleEndpoint(services: KilnServices, tenantId: string, id: string, outcome: RunOutcome, now: Date): Promise<boolean> {
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const latest = await services.store.getWebhookEndpoint(tenantId, id);
    if (latest?.enabled !== true) return false;
    const failingSince = outcome.succeeded ? outcome.failingSince : (latest.failingSince ?? outcome.failingSince);
    const longFailing = failingSince !== undefined && now.getTime() - Date.parse(failingSince) >= DISABLE_AFTER_FAILING_HOURS * 3600_000;
    const reason =
      outcome.gone !== undefined
        ? `The endpoint answered 410 Gone at ${outcome.gone.at}: Kiln stopped delivering to it.`
        : longFailing && outcome.last !== undefined
          ? `Every delivery attempt failed for ${DISABLE_AFTER_FAILING_HOURS} hours, since ${failingSince} (the last, at ${outcome.last.at}: ${lastAnswer(outcome.last)}): Kiln stopped delivering to it. Fix the receiver, enable the endpoint again (PATCH {"enabled": true}) and replay what it missed.`
          : undefined;
    const { failingSince: _previous, ...rest } = latest;
    if (reason === undefined && failingSince === latest.failingSince) return false;
    const next: WebhookEndpointRecord = reason === undefined ? { ...rest, ...(failingSince === undefined ? {} : { failingSince }) } : { ...rest, enabled: false, disabledReason: reason, ...(failingSince === undefined ? {} : { failingSince }) };
    const events =
      reason === undefined ? [] : [tenantWideEvent('webhook_endpoint.disabled', { endpointId: id, url: latest.url, reason, ...(failingSince === undefined ? {} : { failingSince }) }, now)];
    try {
      await services.store.saveWebhookEndpoint(next, latest.version, { events });
      return reason !== undefined;
    } catch (error) {
      if (!(error instanceof VersionConflictError)) throw error;
    }
  }
  return false;
}

/**
 * One run of the delivery worker: for every enabled endpoint, new events become deliveries and the deliveries due are
 * attempted (at least once: an attempt whose result was not recorded is made again, with the same webhook-id). A 2xx
 * answer delivers; anything else is tried again on the schedule. A 410 answer, or a day in which every attempt
 * failed, disables the endpoint with its reason (and an event); its events wait in the feed until it is enabled again.
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
    const outcome: RunOutcome = { succeeded: false };
    for (const delivery of due) {
      const result = await attemptDelivery({ url: endpoint.url, secrets }, { id: delivery.eventId, payload: delivery.payload }, policy, now);
      report.attempted += 1;
      const attempts = [...delivery.attempts, result];
      const { nextAttemptAt: _due, ...rest } = delivery;
      if (result.ok) {
        await services.store.saveWebhookDelivery({ ...rest, attempts, state: 'succeeded' });
        report.succeeded += 1;
        outcome.succeeded = true;
        delete outcome.failingSince;
        continue;
      }
      outcome.failingSince ??= result.at;
      outcome.last = result;
      const wait = RETRY_SCHEDULE_SECONDS[attempts.length - 1];
      if (result.status === 410 || wait === undefined) {
        await services.store.saveWebhookDelivery({ ...rest, attempts, state: 'failed' });
        report.failed += 1;
      } else {
        await services.store.saveWebhookDelivery({ ...rest, attempts, nextAttemptAt: new Date(now.getTime() + wait * 1000).toISOString() });
      }
      if (result.status === 410) {
        outcome.gone = result;
        break;
      }
    }
    if (await settleEndpoint(services, tenantId, id, outcome, now)) report.disabled.push(id);
  }
  return report;
}
