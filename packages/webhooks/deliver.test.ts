import { type ServerResponse, createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterAll, describe, expect, it } from 'vitest';
import { RESPONSE_BYTES_KEPT, attemptDelivery } from './deliver.ts';

const PRODUCTION = { allowLoopback: false };
const LOCAL = { allowLoopback: true };
const SECRET = `whsec_${Buffer.alloc(24, 3).toString('base64')}`;
const message = { id: 'evt_01jd8x7t5k3m4n5p6q7r8s9t0v', payload: '{"type":"webhook.test"}' };

const servers: Server[] = [];
/** A receiver on loopback that answers as `answer` says, counting its requests. */
async function receiver(answer: (response: ServerResponse) => void): Promise<{ url: string; requests: () => number }> {
  let requests = 0;
  const server = createServer((request, response) => {
    requests += 1;
    request.resume();
    request.on('end', () => {
      answer(response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`, requests: () => requests };
}
afterAll(async () => {
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
});

describe('one delivery attempt', () => {
  it.each([
    ['https://127.0.0.1/hooks', PRODUCTION],
    ['https://10.0.0.1/hooks', PRODUCTION],
    ['https://169.254.169.254/latest/meta-data', PRODUCTION],
    ['https://[::1]/hooks', PRODUCTION],
    ['https://[::ffff:127.0.0.1]/hooks', PRODUCTION],
    ['https://localhost/hooks', PRODUCTION],
    ['http://169.254.169.254/latest/meta-data', LOCAL],
    ['https://169.254.169.254/latest/meta-data', LOCAL],
  ])('refuses %s at delivery, without connecting', async (url, policy) => {
    const result = await attemptDelivery({ url, secrets: [SECRET] }, message, policy);
    expect(result).toMatchObject({ ok: false, response: expect.stringMatching(/^refused: /) });
    expect(result.status).toBeUndefined();
  });

  it('signs as Standard Webhooks describes, and keeps only the first kilobyte of the answer', async () => {
    let headers: Record<string, string | string[] | undefined> = {};
    const server = createServer((request, response) => {
      headers = request.headers;
      request.resume();
      request.on('end', () => response.end('x'.repeat(5000)));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    const result = await attemptDelivery({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, secrets: [SECRET] }, message, LOCAL);
    expect(result).toMatchObject({ ok: true, status: 200 });
    expect(result.response).toHaveLength(RESPONSE_BYTES_KEPT);
    expect(headers['webhook-id']).toBe(message.id);
    expect(new Webhook(SECRET).verify(message.payload, { 'webhook-id': message.id, 'webhook-timestamp': String(headers['webhook-timestamp']), 'webhook-signature': String(headers['webhook-signature']) })).toEqual({ type: 'webhook.test' });
  });

  it('does not follow a redirect, wherever it points', async () => {
    const inside = await receiver((response) => response.end('should never be reached'));
    const redirecting = await receiver((response) => {
      response.writeHead(302, { location: inside.url });
      response.end();
    });
    const metadata = await receiver((response) => {
      response.writeHead(307, { location: 'http://169.254.169.254/latest/meta-data/iam/security-credentials/' });
      response.end();
    });
    for (const url of [redirecting.url, metadata.url]) {
      const result = await attemptDelivery({ url, secrets: [SECRET] }, message, LOCAL);
      expect(result).toMatchObject({ ok: false });
      expect([302, 307]).toContain(result.status);
    }
    expect(inside.requests()).toBe(0);
  });
});
