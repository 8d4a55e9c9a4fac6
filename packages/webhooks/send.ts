import { tenantWideEvent } from '#core';
import { VersionConflictError, type WebhookEndpointRecord } from '#store';
import { type AttemptResult, attemptDelivery } from './deliver.ts';
import { webhookSecretContext } from './secret.ts';
import type { SqsBatchResponse, SqsEvent, WebhookMessage } from './queue.ts';
import type { WebhookServices } from './services.ts';

/**
 * When the next attempt comes after a failed one: the first goes at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and
 * 10 h later, about a day and a quarter in all; a delivery whose eighth attempt fails is failed (and replayable).
 */
export const RETRY_SCHEDULE_SECONDS = [5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600] as const;

export interface SendReport {
  attempted: number;
  succeeded: number;
  failed: number;
  /** Messages with nothing to do: the delivery was done already, or its endpoint is disabled or gone. */
  skipped: number;
  /** Endpoints disabled by these attempts (a 410 answer, or a day of failures). */
  disabled: string[];
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
async function settleEndpoint(services: WebhookServices, tenantId: string, id: string, outcome: RunOutcome, now: Date): Promise<boolean> {
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
    const next: WebhookEndpointRecord = {
      ...rest,
      ...(failingSince === undefined ? {} : { failingSince }),
      ...(reason === undefined ? {} : { enabled: false, disabledReason: reason }),
    };
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

/** Attempts the deliveries of one endpoint, in the order given, and records what came of each. */
async function sendToEndpoint(services: WebhookServices, tenantId: string, endpointId: string, eventIds: readonly string[], now: Date, report: SendReport): Promise<void> {
  const endpoint = await services.store.getWebhookEndpoint(tenantId, endpointId);
  if (endpoint?.enabled !== true) {
    // Disabled or deleted meanwhile: its deliveries stay as they are (enabling it again dispatches them).
    report.skipped += eventIds.length;
    return;
  }
  const policy = services.webhooks ?? { allowLoopback: false };
  const active = endpoint.secrets.filter((secret) => secret.expiresAt === undefined || Date.parse(secret.expiresAt) > now.getTime());
  const secrets = await Promise.all(active.map(async (secret) => Buffer.from(await services.sealer.unseal(secret.sealed, webhookSecretContext(endpoint))).toString('utf8')));
  const outcome: RunOutcome = { succeeded: false };
  for (const eventId of eventIds) {
    const delivery = await services.store.getWebhookDelivery(tenantId, endpointId, eventId);
    if (delivery?.state !== 'pending') {
      report.skipped += 1;
      continue;
    }
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
  if (await settleEndpoint(services, tenantId, endpointId, outcome, now)) report.disabled.push(endpointId);
}

/**
 * The sender: attempts the deliveries the messages name (at least once: a delivery whose result was not recorded is
 * attempted again, with the same webhook-id), one endpoint after another. A 2xx answer delivers; anything else is
 * retried on the schedule. A 410 answer, or a day in which every attempt failed, disables the endpoint with its reason
 * (and an event); its events wait in the feed until it is enabled again. Returns the messages it could not process.
 */
export async function sendWebhooks(services: WebhookServices, messages: readonly (WebhookMessage & { messageId?: string })[], now = new Date()): Promise<SendReport & { unprocessed: string[] }> {
  const report: SendReport & { unprocessed: string[] } = { attempted: 0, succeeded: 0, failed: 0, skipped: 0, disabled: [], unprocessed: [] };
  const byEndpoint = new Map<string, (WebhookMessage & { messageId?: string })[]>();
  for (const message of messages) {
    const key = `${message.tenantId}#${message.endpointId}`;
    byEndpoint.set(key, [...(byEndpoint.get(key) ?? []), message]);
  }
  for (const group of byEndpoint.values()) {
    const [first] = group;
    if (first === undefined) continue;
    try {
      await sendToEndpoint(services, first.tenantId, first.endpointId, group.map((message) => message.eventId), now, report);
    } catch (error) {
      // Left in the queue: back after its visibility timeout, and to the dead-letter queue if it keeps failing.
      services.log.warn('webhook sending failed', { tenantId: first.tenantId, endpointId: first.endpointId, error });
      report.unprocessed.push(...group.flatMap((message) => (message.messageId === undefined ? [] : [message.messageId])));
    }
  }
  return report;
}

function messageOf(body: string): WebhookMessage | undefined {
  try {
    const parsed = JSON.parse(body) as Partial<WebhookMessage>;
    return typeof parsed.tenantId === 'string' && typeof parsed.endpointId === 'string' && typeof parsed.eventId === 'string'
      ? { tenantId: parsed.tenantId, endpointId: parsed.endpointId, eventId: parsed.eventId }
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The sender Lambda's handler: a batch of SQS messages in, the ones to leave in the queue out (partial batch
 * response). `into` adds up what it did, for callers that report.
 */
export async function handleWebhookBatch(services: WebhookServices, event: SqsEvent, now = new Date(), into?: SendReport): Promise<SqsBatchResponse> {
  const messages: (WebhookMessage & { messageId: string })[] = [];
  // A message that is not one of ours stays failed, and goes to the dead-letter queue after its receives.
  const malformed: string[] = [];
  for (const record of event.Records) {
    const message = messageOf(record.body);
    if (message === undefined) malformed.push(record.messageId);
    else messages.push({ ...message, messageId: record.messageId });
  }
  const { unprocessed, ...report } = await sendWebhooks(services, messages, now);
  if (into !== undefined) {
    for (const key of ['attempted', 'succeeded', 'failed', 'skipped'] as const) into[key] += report[key];
    into.disabled.push(...report.disabled);
  }
  return { batchItemFailures: [...malformed, ...unprocessed].map((itemIdentifier) => ({ itemIdentifier })) };
}
