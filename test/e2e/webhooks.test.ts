import { spawn } from 'node:child_process';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterAll, describe, expect, it } from 'vitest';
import { clusterEvent, newId } from '#core';
import { authenticate, listTenantEvents } from '#services';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '#sandbox';
import { SqsWebhookQueue, dispatchWebhooks } from '#webhooks';
import { SQSClient } from '@aws-sdk/client-sqs';
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

/**
 * A receiver on loopback that answers with the statuses given, one per request (the last one from then on),
 * `delayMs` after each request arrived.
 */
async function receiver(statuses: number[] = [200], delayMs = 0): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({ headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
      response.statusCode = statuses[Math.min(received.length - 1, statuses.length - 1)] ?? 200;
      setTimeout(() => response.end(response.statusCode >= 400 ? 'not now' : 'ok'), delayMs);
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

/** A dispatch and the senders' work, on the clock given (events join the feed 15 s after they happen). */
const runAt = (secondsFromNow: number) => session.stack.webhooks.run(new Date(Date.now() + secondsFromNow * 1000));

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
    await session.stack.webhooks.run(new Date(Date.parse(rotated.body.previousSecretsExpireAt) + 1000));
    const after = hook.received.at(-1);
    if (after === undefined || after === last) throw new Error('the second test event was not delivered');
    // (Its timestamp is a day ahead of this machine's clock, which verify() would refuse: compare the signatures.)
    const signature = (secret: string, message: Received) =>
      new Webhook(secret).sign(String(message.headers['webhook-id']), new Date(Number(message.headers['webhook-timestamp']) * 1000), message.body);
    expect(String(after.headers['webhook-signature']).split(' ')).toEqual([signature(rotated.body.secret, after)]);
    expect(String(last.headers['webhook-signature']).split(' ')).toEqual([signature(rotated.body.secret, last), signature(created.body.secret, last)]);
  });

  it('loses nothing while the receiver is down for a day: disabled with why, enabled again it gets what waited, and the rest replays with the same webhook-ids', async () => {
    const token = await newTenant();
    const tenantId = await tenantIdOf(token);
    const hook = await receiver();
    const port = Number(new URL(hook.url).port);
    const created = await api<{ id: string }>('POST', '/v1/webhook-endpoints', { token, body: { url: hook.url } });
    // The receiver goes away: nothing listens on its port.
    const closed = new Promise((resolve) => hook.server.close(resolve));
    hook.server.closeAllConnections();
    await closed;
    const from = new Date().toISOString();

    // A day on the sandbox clock: two events every three hours, the worker running every hour.
    const written: string[] = [];
    let disabledBy: number | undefined;
    for (let hour = 0; hour <= 24; hour += 1) {
      if (hour % 3 === 0) {
        const batch = [0, 1].map((index) => clusterEvent('cluster.kubeconfig_issued', newId('cluster'), { validUntil: from, group: `h${hour}-${index}` }));
        await session.stack.services.store.appendEvents(tenantId, batch);
        written.push(...batch.map((event) => event.id));
      }
      const report = await runAt(20 + hour * 3600);
      if (report.disabled.includes(created.body.id)) disabledBy ??= hour;
    }
    // A day after the first failed attempt, Kiln disabled the endpoint, said why, and wrote an event.
    expect(disabledBy).toBe(24);
    const endpoint = await api<{ enabled: boolean; disabledReason: string }>('GET', `/v1/webhook-endpoints/${created.body.id}`, { token });
    expect(endpoint.body.enabled).toBe(false);
    expect(endpoint.body.disabledReason).toMatch(/Every delivery attempt failed for 24 hours, since .*ECONNREFUSED/);
    const disabledEvents = await listTenantEvents(session.stack.services, tenantId, { types: ['webhook_endpoint.disabled'], limit: 10 }, new Date(Date.now() + 20_000));
    expect(disabledEvents.items.map((event) => event.data.endpointId)).toEqual([created.body.id]);
    // That event too goes to the endpoint once it is enabled again.
    written.push(...disabledEvents.items.map((event) => event.id));

    // Two more events while it is disabled; then the receiver is back and the tenant enables the endpoint.
    const meanwhile = [0, 1].map((index) => clusterEvent('cluster.kubeconfig_issued', newId('cluster'), { validUntil: from, group: `later-${index}` }));
    await session.stack.services.store.appendEvents(tenantId, meanwhile);
    await new Promise<void>((resolve) => hook.server.listen(port, '127.0.0.1', resolve));
    const enabled = await api<{ enabled: boolean }>('PATCH', `/v1/webhook-endpoints/${created.body.id}`, { token, body: { enabled: true } });
    expect(enabled.body.enabled).toBe(true);
    await runAt(20 + 25 * 3600);
    const ids = (messages: Received[]) => messages.map((message) => String(message.headers['webhook-id']));
    expect(ids(hook.received)).toEqual(expect.arrayContaining(meanwhile.map((event) => event.id)));

    // Every event of the day is in the delivery log, delivered or still to be tried: none was lost.
    const log = await api<{ items: { eventId: string; state: string; attempts: unknown[]; nextAttemptAt?: string }[] }>('GET', `/v1/webhook-endpoints/${created.body.id}/deliveries`, { token });
    expect(log.body.items.map((delivery) => delivery.eventId).sort()).toEqual([...written, ...meanwhile.map((event) => event.id)].sort());
    for (const delivery of log.body.items) {
      if (delivery.state === 'pending') expect(delivery.nextAttemptAt).toBeDefined();
      else expect(delivery.state).toBe('succeeded');
    }
    // Replaying the day delivers every one of its events now, each with its own webhook-id.
    const replayed = await api<{ items: unknown[] }>('POST', `/v1/webhook-endpoints/${created.body.id}/replays`, { token, body: { from, to: new Date(Date.now() + 1000).toISOString() } });
    expect(replayed.body.items).toHaveLength(written.length + meanwhile.length);
    const before = hook.received.length;
    await runAt(20 + 25 * 3600 + 60);
    expect(ids(hook.received.slice(before)).sort()).toEqual([...written, ...meanwhile.map((event) => event.id)].sort());
  });

  it('loses no event of a burst of 200 when the sender is killed in the middle, and repeats only with the same webhook-id', async () => {
    const token = await newTenant();
    const tenantId = await tenantIdOf(token);
    // A receiver that takes a little while per request, so the kill lands mid-burst.
    const { url, received } = await receiver([200], 10);
    const created = await api<{ id: string }>('POST', '/v1/webhook-endpoints', { token, body: { url } });
    const burst = Array.from({ length: 200 }, (_, index) => clusterEvent('cluster.kubeconfig_issued', newId('cluster'), { validUntil: new Date().toISOString(), group: `b${index}` }));
    for (let index = 0; index < burst.length; index += 25) await session.stack.services.store.appendEvents(tenantId, burst.slice(index, index + 25));

    // The dispatcher puts the burst on the queue (four runs: at most 50 per endpoint and run).
    const dispatcher = new SqsWebhookQueue(new SQSClient({ region: LOCAL_REGION, endpoint: session.stack.webhooks.sqs.endpoint, credentials: LOCAL_CREDENTIALS }), session.stack.webhooks.queueUrl);
    const clock = () => new Date(Date.now() + 20_000);
    let dispatched = 0;
    for (let run = 0; run < 4; run += 1) dispatched += (await dispatchWebhooks(session.stack.services, dispatcher, clock())).dispatched;
    expect(dispatched).toBe(200);

    // The sender as its own process, fed by the event source mapping, killed with SIGKILL mid-burst.
    // (node itself with tsx's loader: the tsx command would run it in a grandchild the kill does not reach.)
    const sender = spawn(process.execPath, ['--import', 'tsx', 'test/support/webhook-sender-process.ts'], {
      env: { ...process.env, KILN_TEST_CLOCK_AHEAD_MS: '20000', KILN_TEST_VISIBILITY_SECONDS: '2', KILN_LOG_LEVEL: 'error' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise((resolve) => sender.once('exit', resolve));
    await expect.poll(() => received.length, { timeout: 60_000, interval: 20 }).toBeGreaterThanOrEqual(60);
    sender.kill('SIGKILL');
    await exited;
    expect(received.length).toBeLessThan(200);

    // What it had taken comes back to the queue when its visibility ends; another sender takes it, and the rest.
    const distinct = () => new Set(received.map((message) => message.headers['webhook-id'])).size;
    for (let pass = 0; pass < 40 && distinct() < 200; pass += 1) {
      await session.stack.webhooks.run(clock());
      if (distinct() < 200) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const ids = received.map((message) => String(message.headers['webhook-id']));
    expect(new Set(ids)).toEqual(new Set(burst.map((event) => event.id)));
    // A repeat is an attempt in flight when the sender died: the same event, with the same webhook-id and body.
    expect(ids.length - new Set(ids).size).toBeLessThanOrEqual(1);
    for (const message of received) expect((JSON.parse(message.body) as { id: string }).id).toBe(message.headers['webhook-id']);
    const log = await session.stack.services.store.listWebhookDeliveriesBetween(tenantId, created.body.id, 'evt_', 'evt_~');
    expect(log).toHaveLength(200);
    expect(log.every((delivery) => delivery.state === 'succeeded' && delivery.attempts.length === 1)).toBe(true);
    expect(session.stack.webhooks.sqs.depth('kiln-webhook-deliveries-dlq')).toBe(0);
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
