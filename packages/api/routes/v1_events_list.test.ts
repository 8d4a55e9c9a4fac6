import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTER_EVENT_TYPES, type ClusterEvent, type Problem, clusterEvent, newId } from '#core';
import { listTenantEvents } from '#services';
import { expectProblem } from '../../../test/support/api.ts';
import { type ApiHarness, startApiHarness } from '../../../test/support/api-harness.ts';

let api: ApiHarness;
beforeAll(async () => {
  api = await startApiHarness();
});
afterAll(async () => {
  await api.close();
});

/** Writes events as the services do, in transactions of 25. */
async function write(tenantId: string, events: ClusterEvent[]): Promise<void> {
  for (let index = 0; index < events.length; index += 25) await api.services.store.appendEvents(tenantId, events.slice(index, index + 25));
}

const later = () => new Date(Date.now() + 60_000);

describe('GET /v1/events', () => {
  it('pages through 500 events of two clusters in order, with no gaps and no repeats, and never another tenant\'s', async () => {
    const tenant = await api.newTenant();
    const other = await api.newTenant();
    const clusters = [newId('cluster'), newId('cluster')];
    const types = ['cluster.phase_changed', 'node.replaced'] as const;
    const written = Array.from({ length: 500 }, (_, index) => clusterEvent(types[index % 2] ?? 'cluster.phase_changed', clusters[index % 2] ?? '', { index }));
    await write(tenant.id, written);
    await write(other.id, Array.from({ length: 40 }, (_, index) => clusterEvent('cluster.created', newId('cluster'), { index })));

    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    for (;;) {
      const page = await listTenantEvents(api.services, tenant.id, { ...(after === undefined ? {} : { after }), types: [], limit: 37 }, later());
      pages += 1;
      seen.push(...page.items.map((event) => event.id));
      expect(page.items.every((event) => event.tenantId === tenant.id)).toBe(true);
      if (!page.more) break;
      after = page.nextCursor ?? undefined;
    }
    expect(pages).toBe(Math.ceil(500 / 37));
    expect(seen).toEqual(written.map((event) => event.id));
    expect(new Set(seen).size).toBe(500);

    // Only some types, across clusters; a cursor at the end reads nothing more.
    const replaced = await listTenantEvents(api.services, tenant.id, { types: ['node.replaced'], limit: 500 }, later());
    expect(replaced.items.map((event) => event.id)).toEqual(written.filter((event) => event.type === 'node.replaced').map((event) => event.id));
    const end = await listTenantEvents(api.services, tenant.id, { after: seen.at(-1) ?? '', types: [], limit: 10 }, later());
    expect(end).toEqual({ items: [], nextCursor: seen.at(-1), more: false });
  });

  it('lists an event only once it has settled, so a cursor never passes one written late', async () => {
    const tenant = await api.newTenant();
    const event = clusterEvent('cluster.created', newId('cluster'), {});
    await write(tenant.id, [event]);
    const now = await api.call<{ items: unknown[]; nextCursor: string | null; more: boolean }>('GET', '/v1/events', { token: tenant.apiKey });
    expect(now.status).toBe(200);
    expect(now.body).toEqual({ items: [], nextCursor: null, more: false });
    const settled = await listTenantEvents(api.services, tenant.id, { types: [], limit: 10 }, new Date(Date.parse(event.occurredAt) + 16_000));
    expect(settled.items.map((item) => item.id)).toEqual([event.id]);
  });

  it('refuses an unknown type and a cursor that is not an event id', async () => {
    const tenant = await api.newTenant();
    const unknown = await api.call<Problem>('GET', '/v1/events?types=cluster.created,cluster.exploded', { token: tenant.apiKey });
    expectProblem(unknown, 400, 'validation_failed');
    expect(JSON.stringify(unknown.body.errors)).toContain('cluster.exploded: not an event type');
    expect(CLUSTER_EVENT_TYPES).toContain('cluster.created');
    expectProblem(await api.call<Problem>('GET', '/v1/events?after=cls_01jd8x7t5k3m4n5p6q7r8s9t0v', { token: tenant.apiKey }), 400, 'validation_failed');
    expectProblem(await api.call<Problem>('GET', '/v1/events?limit=501', { token: tenant.apiKey }), 400, 'validation_failed');
  });
});
