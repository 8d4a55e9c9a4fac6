import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_TYPES, type Problem, type WebhookEndpoint, firstIdAt, newId } from '#core';
import { newApp, openApiDocument } from '../index.ts';
import { expectProblem } from '../../../test/support/api.ts';
import { type ApiHarness, startApiHarness } from '../../../test/support/api-harness.ts';

let api: ApiHarness;
beforeAll(async () => {
  api = await startApiHarness();
});
afterAll(async () => {
  await api.close();
});

/** An endpoint as creation leaves it (creation itself seals the secret with KMS, which the route harness has not). */
async function storedEndpoint(tenantId: string, fields: { enabled?: boolean; disabledReason?: string; failingSince?: string } = {}): Promise<string> {
  const id = newId('webhookEndpoint');
  const now = new Date().toISOString();
  await api.services.store.createWebhookEndpoint({
    tenantId,
    id,
    url: 'https://93.184.216.34/hooks',
    eventTypes: ['cluster.ready'],
    description: 'billing',
    enabled: fields.enabled ?? true,
    ...(fields.disabledReason === undefined ? {} : { disabledReason: fields.disabledReason }),
    ...(fields.failingSince === undefined ? {} : { failingSince: fields.failingSince }),
    secrets: [{ sealed: 'kms-envelope:v1:sealed' }],
    cursor: firstIdAt('event', new Date()),
    createdAt: now,
    updatedAt: now,
    version: 1,
  });
  return id;
}

describe('PATCH /v1/webhook-endpoints/{id}', () => {
  it('changes the fields named and keeps the others; null removes the description', async () => {
    const tenant = await api.newTenant();
    const id = await storedEndpoint(tenant.id);
    const changed = await api.call<WebhookEndpoint>('PATCH', `/v1/webhook-endpoints/${id}`, {
      token: tenant.apiKey,
      body: { url: 'https://93.184.216.35/v2/hooks', eventTypes: ['usage.reported', 'cluster.failed'], description: null },
    });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ id, url: 'https://93.184.216.35/v2/hooks', eventTypes: ['usage.reported', 'cluster.failed'], enabled: true });
    expect(changed.body).not.toHaveProperty('description');
    expect(changed.text).not.toContain('sealed');
    const read = await api.call<WebhookEndpoint>('GET', `/v1/webhook-endpoints/${id}`, { token: tenant.apiKey });
    expect(read.body).toEqual(changed.body);
  });

  it('pauses and enables again; enabling clears why Kiln disabled it and its failing streak', async () => {
    const tenant = await api.newTenant();
    const id = await storedEndpoint(tenant.id, { enabled: false, disabledReason: 'Every delivery attempt failed for 24 hours.', failingSince: new Date(Date.now() - 86_400_000).toISOString() });
    const before = await api.call<WebhookEndpoint>('GET', `/v1/webhook-endpoints/${id}`, { token: tenant.apiKey });
    expect(before.body).toMatchObject({ enabled: false, disabledReason: 'Every delivery attempt failed for 24 hours.', failingSince: expect.any(String) });

    const enabled = await api.call<WebhookEndpoint>('PATCH', `/v1/webhook-endpoints/${id}`, { token: tenant.apiKey, body: { enabled: true } });
    expect(enabled.body.enabled).toBe(true);
    expect(enabled.body).not.toHaveProperty('disabledReason');
    expect(enabled.body).not.toHaveProperty('failingSince');
    expect(await api.services.store.listEnabledWebhookEndpoints()).toContainEqual({ tenantId: tenant.id, id });

    const paused = await api.call<WebhookEndpoint>('PATCH', `/v1/webhook-endpoints/${id}`, { token: tenant.apiKey, body: { enabled: false } });
    expect(paused.body).toMatchObject({ enabled: false, disabledReason: expect.stringMatching(/^Paused by the tenant at /) });
    expect(await api.services.store.listEnabledWebhookEndpoints()).not.toContainEqual({ tenantId: tenant.id, id });
    // Changing something else keeps it paused, with the same reason.
    const described = await api.call<WebhookEndpoint>('PATCH', `/v1/webhook-endpoints/${id}`, { token: tenant.apiKey, body: { description: 'portal' } });
    expect(described.body).toMatchObject({ enabled: false, description: 'portal', disabledReason: paused.body.disabledReason });
  });

  it('refuses a URL Kiln would not deliver to (422), a field it does not know (400), and another tenant\'s endpoint (404), changing nothing', async () => {
    const tenant = await api.newTenant();
    const other = await api.newTenant();
    const id = await storedEndpoint(tenant.id);
    const before = await api.services.store.getWebhookEndpoint(tenant.id, id);

    for (const url of ['http://127.0.0.1:8080/hooks', 'https://10.0.0.1/hooks', 'https://169.254.169.254/latest', 'https://[::ffff:127.0.0.1]/hooks']) {
      const refused = await api.call<Problem>('PATCH', `/v1/webhook-endpoints/${id}`, { token: tenant.apiKey, body: { url } });
      expectProblem(refused, 422, 'unprocessable');
      expect(refused.body.detail).toMatch(/^Kiln does not deliver there: /);
    }
    const misspelled = await api.call<Problem>('PATCH', `/v1/webhook-endpoints/${id}`, { token: tenant.apiKey, body: { enable: true } });
    expectProblem(misspelled, 400, 'validation_failed');
    expect(misspelled.text).toContain('enable');
    expectProblem(await api.call<Problem>('PATCH', `/v1/webhook-endpoints/${id}`, { token: tenant.apiKey, body: { eventTypes: ['cluster.exploded'] } }), 400, 'validation_failed');
    expectProblem(await api.call<Problem>('PATCH', `/v1/webhook-endpoints/${id}`, { token: other.apiKey, body: { enabled: false } }), 404, 'not_found');
    expect(await api.services.store.getWebhookEndpoint(tenant.id, id)).toEqual(before);
  });
});

describe('the document\'s webhooks section', () => {
  it('has every event type with its typed body and the Standard Webhooks headers', () => {
    const document = openApiDocument(newApp(api.services)) as unknown as {
      webhooks: Record<string, { post: { parameters: { name: string; in: string; required: boolean }[]; requestBody: { content: { 'application/json': { schema: { $ref: string } } } } } }>;
      components: { schemas: Record<string, { properties: Record<string, unknown>; required: string[] }> };
    };
    expect(Object.keys(document.webhooks).sort()).toEqual([...EVENT_TYPES].sort());
    for (const [type, { post }] of Object.entries(document.webhooks)) {
      expect(post.parameters.filter((parameter) => parameter.in === 'header' && parameter.required).map((parameter) => parameter.name)).toEqual(['webhook-id', 'webhook-timestamp', 'webhook-signature']);
      const name = post.requestBody.content['application/json'].schema.$ref.split('/').at(-1) ?? '';
      const schema = document.components.schemas[name];
      expect(schema?.properties.type, type).toEqual({ type: 'string', enum: [type] });
      // Tenant-wide events have no cluster.
      expect(schema?.required.includes('clusterId'), type).toBe(!['usage.reported', 'webhook_endpoint.disabled'].includes(type));
    }
    expect(document.components.schemas.UsagePeriod?.properties).toHaveProperty('items');
  });
});
