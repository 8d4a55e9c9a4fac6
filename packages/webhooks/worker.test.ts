import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterEvent, firstIdAt, newId } from '#core';
import { type KilnServices, listTenantEvents, updateWebhookEndpoint } from '#services';
import type { SecretSealer } from '#encryption';
import { type ApiHarness, startApiHarness } from '../../test/support/api-harness.ts';
import { DISABLE_AFTER_FAILING_HOURS, deliverWebhooks } from './worker.ts';

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

const event = () => clusterEvent('cluster.kubeconfig_issued', newId('cluster'), { validUntil: new Date().toISOString(), group: 'g' });

describe('the webhook delivery worker', () => {
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
});
