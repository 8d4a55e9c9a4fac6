import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterEvent, firstIdAt, newId } from '#core';
import { type KilnServices, listTenantEvents, updateWebhookEndpoint } from '#services';
import type { SecretSealer } from '#encryption';
import { type ApiHarness, startApiHarness } from '../../test/support/api-harness.ts';
import { DISPATCH_LEASE_SECONDS, dispatchWebhooks } from './dispatch.ts';
import type { WebhookMessage, WebhookQueue } from './queue.ts';
import { DISABLE_AFTER_FAILING_HOURS, handleWebhookBatch, sendWebhooks } from './send.ts';

/** Seals by encoding only: these tests are about the worker, not KMS (the e2e tests use the KMS stand-in). */
const encodingSealer: SecretSealer = {
  seal: (plaintext) => Promise.resolve(`test:${Buffer.from(plaintext).toString('base64')}`),
  unseal: (sealed) => Promise.resolve(Buffer.from(sealed.slice('test:'.length), 'base64')),
};

let api: ApiHarness;
let services: KilnServices;
let server: Server;
let url: string;
/** What the receiver answers now, and the webhook-ids it saw. */
const receiver = { status: 500, seen: [] as string[] };

beforeAll(async () => {
  api = await startApiHarness();
  services = { ...api.services, sealer: encodingSealer, webhooks: { allowLoopback: true } };
  server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      receiver.seen.push(String(request.headers['webhook-id']));
      response.statusCode = receiver.status;
      response.end(receiver.status >= 400 ? 'down' : 'ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await api.close();
});

const HOUR = 3600_000;
const start = Date.now();
/** The worker's clock, `hours` after the test began (events settle 15 s after they are written). */
const at = (hours: number) => new Date(start + 20_000 + hours * HOUR);

async function endpointFor(tenantId: string): Promise<string> {
  const id = newId('webhookEndpoint');
  const now = new Date().toISOString();
  await services.store.createWebhookEndpoint({
    tenantId,
    id,
    url,
    eventTypes: [],
    enabled: true,
    secrets: [{ sealed: await encodingSealer.seal(Buffer.from(`whsec_${Buffer.alloc(24, 1).toString('base64')}`), {}) }],
    cursor: firstIdAt('event', new Date(start - 1000)),
    createdAt: now,
    updatedAt: now,
    version: 1,
  });
  return id;
}

/** A queue in memory: what the dispatcher sent, for the sender to take. */
const queued: WebhookMessage[] = [];
const memoryQueue: WebhookQueue = {
  send: (messages) => {
    queued.push(...messages);
    return Promise.resolve();
  },
};
/** One dispatch and one send of everything it queued, both at `now`. */
async function deliverWebhooks(kiln: KilnServices, now: Date) {
  await dispatchWebhooks(kiln, memoryQueue, now);
  return sendWebhooks(kiln, queued.splice(0), now);
}

const event = () => clusterEvent('cluster.kubeconfig_issued', newId('cluster'), { validUntil: new Date().toISOString(), group: 'g' });

describe('the webhook dispatcher and sender', () => {
  it(`disables an endpoint after ${DISABLE_AFTER_FAILING_HOURS} hours in which every attempt failed, with a reason and an event; enabled again, it delivers what waited`, async () => {
    const tenant = await api.newTenant();
    const id = await endpointFor(tenant.id);
    const first = event();
    await services.store.appendEvents(tenant.id, [first]);
    receiver.status = 500;

    // Attempts at 0 h and 23 h fail (the retry is due by then): still enabled, failing since the first.
    expect((await deliverWebhooks(services, at(0))).disabled).toEqual([]);
    expect(await services.store.getWebhookEndpoint(tenant.id, id)).toMatchObject({ enabled: true, failingSince: at(0).toISOString() });
    expect((await deliverWebhooks(services, at(23))).disabled).toEqual([]);
    // The attempt a day after the first failure fails too: disabled, with why, and an event for the other endpoints.
    const report = await deliverWebhooks(services, at(24));
    expect(report.disabled).toEqual([id]);
    const disabled = await services.store.getWebhookEndpoint(tenant.id, id);
    expect(disabled).toMatchObject({ enabled: false });
    expect(disabled?.disabledReason).toContain(`failed for ${DISABLE_AFTER_FAILING_HOURS} hours, since ${at(0).toISOString()}`);
    expect(disabled?.disabledReason).toContain('500 "down"');
    const feed = await listTenantEvents(services, tenant.id, { types: ['webhook_endpoint.disabled'], limit: 10 }, at(25));
    expect(feed.items).toHaveLength(1);
    expect(feed.items[0]).toMatchObject({ tenantId: tenant.id, data: { endpointId: id, url, reason: disabled?.disabledReason, failingSince: at(0).toISOString() } });
    expect(feed.items[0]?.clusterId).toBeUndefined();

    // Disabled, it is left alone: events wait in the feed.
    const whileDisabled = event();
    await services.store.appendEvents(tenant.id, [whileDisabled]);
    const seenBefore = receiver.seen.length;
    expect((await deliverWebhooks(services, at(30))).attempted).toBe(0);
    expect(receiver.seen).toHaveLength(seenBefore);

    // Enabled again, with the receiver back: the waiting event goes out, and the failed one on its schedule.
    receiver.status = 200;
    const enabled = await updateWebhookEndpoint(services, tenant.id, id, { enabled: true });
    expect(enabled).toMatchObject({ enabled: true });
    expect(enabled.disabledReason).toBeUndefined();
    expect(enabled.failingSince).toBeUndefined();
    await deliverWebhooks(services, at(40));
    expect(receiver.seen.slice(seenBefore)).toEqual(expect.arrayContaining([whileDisabled.id, first.id]));
    expect(await services.store.getWebhookEndpoint(tenant.id, id)).toMatchObject({ enabled: true });
  });

  it('starts the failing streak over after a success, so an endpoint that recovers now and then stays enabled', async () => {
    const tenant = await api.newTenant();
    const id = await endpointFor(tenant.id);
    receiver.status = 500;
    await services.store.appendEvents(tenant.id, [event()]);
    await deliverWebhooks(services, at(0));
    expect((await services.store.getWebhookEndpoint(tenant.id, id))?.failingSince).toBe(at(0).toISOString());

    // A success 12 hours in (the retry due then) clears the streak.
    receiver.status = 200;
    await deliverWebhooks(services, at(12));
    expect((await services.store.getWebhookEndpoint(tenant.id, id))?.failingSince).toBeUndefined();

    // Failing again from 13 h: at 25 h that is 12 hours of failures, not 24.
    receiver.status = 500;
    await services.store.appendEvents(tenant.id, [event()]);
    await deliverWebhooks(services, at(13));
    await services.store.appendEvents(tenant.id, [event()]);
    expect((await deliverWebhooks(services, at(25))).disabled).toEqual([]);
    expect(await services.store.getWebhookEndpoint(tenant.id, id)).toMatchObject({ enabled: true, failingSince: at(13).toISOString() });
  });

  it('disables at once on 410 Gone, and the delivery that got it is failed', async () => {
    const tenant = await api.newTenant();
    const id = await endpointFor(tenant.id);
    receiver.status = 410;
    const gone = event();
    await services.store.appendEvents(tenant.id, [gone]);
    expect((await deliverWebhooks(services, at(0))).disabled).toEqual([id]);
    const endpoint = await services.store.getWebhookEndpoint(tenant.id, id);
    expect(endpoint?.enabled).toBe(false);
    expect(endpoint?.disabledReason).toContain('410 Gone');
    expect((await services.store.listWebhookDeliveries(tenant.id, id)).map((delivery) => [delivery.eventId, delivery.state])).toEqual([[gone.id, 'failed']]);
    const feed = await listTenantEvents(services, tenant.id, { types: ['webhook_endpoint.disabled'], limit: 10 }, at(1));
    expect(feed.items.map((item) => item.data.endpointId)).toEqual([id]);
  });

  it('dispatches a due delivery once while its lease lasts, and again after it, if no sender finished it', async () => {
    const tenant = await api.newTenant();
    const id = await endpointFor(tenant.id);
    const waiting = event();
    await services.store.appendEvents(tenant.id, [waiting]);
    expect(await dispatchWebhooks(services, memoryQueue, at(0))).toEqual({ enqueued: 1, dispatched: 1 });
    expect(queued.splice(0)).toEqual([{ tenantId: tenant.id, endpointId: id, eventId: waiting.id }]);
    // A second dispatcher (or the next run) within the lease sends nothing.
    expect(await dispatchWebhooks(services, memoryQueue, at(0))).toEqual({ enqueued: 0, dispatched: 0 });
    // The sender never finished it: when the lease ends it goes out again, the same delivery.
    expect(await dispatchWebhooks(services, memoryQueue, new Date(at(0).getTime() + (DISPATCH_LEASE_SECONDS + 1) * 1000))).toEqual({ enqueued: 0, dispatched: 1 });
    expect(queued.splice(0)).toEqual([{ tenantId: tenant.id, endpointId: id, eventId: waiting.id }]);
  });

  it('answers SQS with the messages to keep: one that is not a delivery message, and none that were done', async () => {
    const tenant = await api.newTenant();
    const id = await endpointFor(tenant.id);
    receiver.status = 200;
    const done = event();
    await services.store.appendEvents(tenant.id, [done]);
    await dispatchWebhooks(services, memoryQueue, at(0));
    const [message] = queued.splice(0);
    const body = JSON.stringify(message);
    const first = await handleWebhookBatch(services, { Records: [{ messageId: 'm-1', body }, { messageId: 'm-2', body: '{"not":"ours"}' }] }, at(0));
    expect(first).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-2' }] });
    // SQS delivered it twice: the second is skipped, nothing is sent again.
    const seen = receiver.seen.length;
    expect(await handleWebhookBatch(services, { Records: [{ messageId: 'm-3', body }] }, at(0))).toEqual({ batchItemFailures: [] });
    expect(receiver.seen).toHaveLength(seen);
    expect((await services.store.getWebhookDelivery(tenant.id, id, done.id))?.state).toBe('succeeded');
  });
});
