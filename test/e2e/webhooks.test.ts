import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterAll, describe, expect, it } from 'vitest';
import { clusterEvent, newId } from '#core';
import { authenticate } from '#services';
import { deliverWebhooks } from '#webhooks';
import { expectProblem } from '../support/api.ts';
import { type ClusterBody, localSession, order } from '../support/local-session.ts';

// The tests run the delivery worker themselves, on a clock they move.
const session = localSession({ port: 0, logLevel: 'error', healthPollSeconds: 0, webhookDeliverySeconds: 0 });
const { newTenant, waitForPhase } = session;
const api: typeof session.api = (...args) => session.api(...args);

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A receiver on loopback that answers with the statuses given, one per request (the last one from then on). */
async function receiver(statuses: number[] = [200]): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({ headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
      response.statusCode = statuses[Math.min(received.length - 1, statuses.length - 1)] ?? 200;
      response.end(response.statusCode >= 400 ? 'not now' : 'ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`, received, server };
}
const servers: Server[] = [];
afterAll(async () => {
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
});

const signed = (message: Received) => ({
  'webhook-id': String(message.headers['webhook-id']),
  'webhook-timestamp': String(message.headers['webhook-timestamp']),
  'webhook-signature': String(message.headers['webhook-signature']),
});

/** The worker's runs, each on the clock it is given (events join the feed 15 s after they happen). */
const runAt = (secondsFromNow: number) => deliverWebhooks(session.stack.services, new Date(Date.now() + secondsFromNow * 1000));

async function tenantIdOf(token: string): Promise<string> {
  const principal = await authenticate(session.stack.services, token);
  if (principal?.kind !== 'tenant') throw new Error('not a tenant key');
  return principal.tenantId;
}

describe('webhooks', () => {
  it('delivers a new order\'s events signed as Standard Webhooks describes, verifiable with the endpoint\'s secret only', async () => {
    const token = await newTenant();
    const hook = await receiver();
    const created = await api<{ id: string; secret: string }>('POST', '/v1/webhook-endpoints', { token, body: { url: hook.url, description: 'billing' } });
    expect(created.status).toBe(201);
    expect(created.body.secret).toMatch(/^whsec_/);
    const cluster = await api<ClusterBody>('POST', '/v1/clusters', { token, body: order('hooked') });
    await waitForPhase(token, cluster.body.id, 'Ready');

    await runAt(20);
    const verifier = new Webhook(created.body.secret);
    const events = hook.received.map((message) => verifier.verify(message.body, signed(message)) as { id: string; type: string; clusterId: string });
    expect(events.map((event) => event.type)).toEqual(expect.arrayContaining(['cluster.created', 'operation.started', 'operation.succeeded', 'cluster.ready']));
    expect(events.every((event) => event.clusterId === cluster.body.id)).toBe(true);
    expect(hook.received.map((message) => message.headers['webhook-id'])).toEqual(events.map((event) => event.id));

    // A tampered body, or another secret, does not verify.
    const [first] = hook.received;
    if (first === undefined) throw new Error('nothing was delivered');
    expect(() => verifier.verify(first.body.replace('"cluster', '"xcluster'), signed(first))).toThrow();
    expect(() => new Webhook(`whsec_${Buffer.alloc(24, 7).toString('base64')}`).verify(first.body, signed(first))).toThrow();
    // Nothing is delivered twice once it succeeded.
    const count = hook.received.length;
    await runAt(30);
    expect(hook.received).toHaveLength(count);
    const deliveries = await api<{ items: { state: string; attempts: { status: number }[] }[] }>('GET', `/v1/webhook-endpoints/${created.body.id}/deliveries`, { token });
    expect(deliveries.body.items.every((delivery) => delivery.state === 'succeeded' && delivery.attempts.length === 1 && delivery.attempts[0]?.status === 200)).toBe(true);
  });

  it('tries again on the schedule until the receiver takes it: three 500s then a 200 is four attempts, one event', async () => {
    const token = await newTenant();
    const hook = await receiver([500, 500, 500, 200]);
    const created = await api<{ id: string }>('POST', '/v1/webhook-endpoints', { token, body: { url: hook.url, eventTypes: ['cluster.kubeconfig_issued'] } });
    const event = clusterEvent('cluster.kubeconfig_issued', newId('cluster'), { validUntil: new Date().toISOString(), group: 'kubeadm:cluster-admins' });
    await session.stack.services.store.appendEvents(await tenantIdOf(token), [event]);

    // Settled at +20 s; then 5 s, 5 min and 30 min after each failure.
    for (const at of [20, 25, 25 + 300, 25 + 300 + 1800]) await runAt(at);
    expect(hook.received.map((message) => message.headers['webhook-id'])).toEqual([event.id, event.id, event.id, event.id]);
    const deliveries = await api<{ items: { eventId: string; state: string; attempts: { status: number; response: string }[] }[] }>('GET', `/v1/webhook-endpoints/${created.body.id}/deliveries`, { token });
    expect(deliveries.body.items).toHaveLength(1);
    expect(deliveries.body.items[0]).toMatchObject({ eventId: event.id, state: 'succeeded' });
    expect(deliveries.body.items[0]?.attempts.map((attempt) => [attempt.status, attempt.response])).toEqual([
      [500, 'not now'],
      [500, 'not now'],
      [500, 'not now'],
      [200, 'ok'],
    ]);
    // Before its time, a retry is not made.
    expect((await runAt(25 + 300 + 1800 + 5)).attempted).toBe(0);
  });

  it('replays a time range with the same webhook-ids, and signs with the old and the new secret while a rotation overlaps', async () => {
    const token = await newTenant();
    const hook = await receiver();
    const created = await api<{ id: string; secret: string }>('POST', '/v1/webhook-endpoints', { token, body: { url: hook.url } });
    const from = new Date().toISOString();
    const events = [0, 1, 2].map((index) => clusterEvent('cluster.kubeconfig_issued', newId('cluster'), { validUntil: from, group: `g${index}` }));
    await session.stack.services.store.appendEvents(await tenantIdOf(token), events);
    await runAt(20);
    expect(hook.received.map((message) => message.headers['webhook-id'])).toEqual(events.map((event) => event.id));

    const replayed = await api<{ items: { eventId: string; state: string }[] }>('POST', `/v1/webhook-endpoints/${created.body.id}/replays`, { token, body: { from, to: new Date(Date.now() + 1000).toISOString() } });
    expect(replayed.status).toBe(202);
    expect(replayed.body.items.map((delivery) => [delivery.eventId, delivery.state])).toEqual(events.map((event) => [event.id, 'pending']));
    await runAt(21);
    expect(hook.received.slice(3).map((message) => message.headers['webhook-id'])).toEqual(events.map((event) => event.id));
    expectProblem(await api('POST', `/v1/webhook-endpoints/${created.body.id}/replays`, { token, body: { from } }), 400, 'validation_failed');

    const rotated = await api<{ secret: string; previousSecretsExpireAt: string }>('POST', `/v1/webhook-endpoints/${created.body.id}/secret-rotations`, { token });
    expect(rotated.status).toBe(201);
    expect(rotated.body.secret).not.toBe(created.body.secret);
    const test = await api<{ eventId: string; eventType: string }>('POST', `/v1/webhook-endpoints/${created.body.id}/test-events`, { token });
    expect(test.status).toBe(202);
    await runAt(22);
    const last = hook.received.at(-1);
    if (last === undefined) throw new Error('the test event was not delivered');
    expect(last.headers['webhook-id']).toBe(test.body.eventId);
    for (const secret of [created.body.secret, rotated.body.secret]) expect(new Webhook(secret).verify(last.body, signed(last))).toMatchObject({ type: 'webhook.test' });
    // Once the overlap is over, only the new secret signs.
    await api('POST', `/v1/webhook-endpoints/${created.body.id}/test-events`, { token });
    await deliverWebhooks(session.stack.services, new Date(Date.parse(rotated.body.previousSecretsExpireAt) + 1000));
    const after = hook.received.at(-1);
    if (after === undefined || after === last) throw new Error('the second test event was not delivered');
    // (Its timestamp is a day ahead of this machine's clock, which verify() would refuse: compare the signatures.)
    const signature = (secret: string, message: Received) =>
      new Webhook(secret).sign(String(message.headers['webhook-id']), new Date(Number(message.headers['webhook-timestamp']) * 1000), message.body);
    expect(String(after.headers['webhook-signature']).split(' ')).toEqual([signature(rotated.body.secret, after)]);
    expect(String(last.headers['webhook-signature']).split(' ')).toEqual([signature(rotated.body.secret, last), signature(created.body.secret, last)]);
  });

  it('disables an endpoint that answers 410, saying why', async () => {
    const token = await newTenant();
    const hook = await receiver([410]);
    const created = await api<{ id: string }>('POST', '/v1/webhook-endpoints', { token, body: { url: hook.url } });
    await session.stack.services.store.appendEvents(await tenantIdOf(token), [clusterEvent('cluster.ssh_key_downloaded', newId('cluster'), {})]);
    const report = await runAt(20);
    expect(report.disabled).toContain(created.body.id);
    const endpoint = await api<{ enabled: boolean; disabledReason?: string }>('GET', `/v1/webhook-endpoints/${created.body.id}`, { token });
    expect(endpoint.body).toMatchObject({ enabled: false, disabledReason: expect.stringContaining('410 Gone') });
  });

  it('refuses URLs that point inside, at creation', async () => {
    const token = await newTenant();
    for (const url of ['https://10.0.0.1/hooks', 'https://169.254.169.254/latest/meta-data', 'http://169.254.169.254/', 'https://[::ffff:10.0.0.1]/', 'https://[fd00:ec2::254]/', 'ftp://203.0.113.10/', 'http://203.0.113.10/hooks']) {
      const refused = await api<{ errors: { pointer: string }[] }>('POST', '/v1/webhook-endpoints', { token, body: { url } });
      expectProblem(refused, 422, 'unprocessable');
      expect(refused.body.errors.map((error) => error.pointer), url).toEqual(['/url']);
    }
    expect((await api<{ items: unknown[] }>('GET', '/v1/webhook-endpoints', { token })).body.items).toEqual([]);
  });
});
