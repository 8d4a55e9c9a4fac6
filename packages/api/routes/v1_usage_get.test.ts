import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Problem, type UsageReport, newId } from '#core';
import { meterCluster, reportUsage } from '#services';
import { expectProblem } from '../../../test/support/api.ts';
import { type ApiHarness, startApiHarness } from '../../../test/support/api-harness.ts';

let api: ApiHarness;
beforeAll(async () => {
  api = await startApiHarness();
});
afterAll(async () => {
  await api.close();
});

const H = Date.UTC(2026, 9, 5, 8);
const HOUR = 3600_000;
const iso = (time: number) => new Date(time).toISOString();

describe('GET /v1/usage', () => {
  it('gives the tenant its own reported hours only', async () => {
    const tenant = await api.newTenant();
    const other = await api.newTenant();
    const spec = { controlPlane: { replicas: 1, instanceType: 'm7i.large' }, nodePools: [] };
    await meterCluster(api.services, { tenantId: tenant.id, id: newId('cluster'), spec }, [{ instanceId: 'i-1', group: { role: 'control-plane' }, state: 'running', instanceType: 'm7i.large' }], new Date(H));
    await reportUsage(api.services, new Date(H + 2 * HOUR));

    const mine = await api.call<UsageReport>('GET', `/v1/usage?from=${iso(H)}&to=${iso(H + 2 * HOUR)}`, { token: tenant.apiKey });
    expect(mine.status).toBe(200);
    expect(mine.body).toMatchObject({ granularity: 'hour', reportedThrough: iso(H + HOUR) });
    expect(mine.body.periods.map((period) => [period.from, period.nodeSeconds])).toEqual([[iso(H), 3600]]);
    expect(mine.body.periods[0]?.items).toEqual([{ clusterId: expect.any(String), role: 'control-plane', instanceType: 'm7i.large', nodeSeconds: 3600, nodeHours: 1 }]);

    const theirs = await api.call<UsageReport>('GET', `/v1/usage?from=${iso(H)}&to=${iso(H + 2 * HOUR)}`, { token: other.apiKey });
    expect(theirs.body).toEqual({ from: iso(H), to: iso(H + 2 * HOUR), granularity: 'hour', reportedThrough: null, periods: [] });
  });

  it('refuses ranges that are not on period boundaries, backwards, or too long, saying which', async () => {
    const tenant = await api.newTenant();
    const cases: [string, string][] = [
      [`from=${iso(H + 60_000)}&to=${iso(H + HOUR)}`, 'must be on the hour'],
      [`from=${iso(H)}&to=${iso(H + 24 * HOUR)}&granularity=day`, 'at 00:00 UTC'],
      [`from=${iso(H + HOUR)}&to=${iso(H)}`, 'must be after from'],
      [`from=${iso(H)}&to=${iso(H + 800 * HOUR)}`, 'at most 744 hours'],
      [`from=${iso(H)}&to=${iso(H + HOUR)}&granularity=minute`, 'granularity'],
      [`to=${iso(H + HOUR)}`, 'from'],
    ];
    for (const [query, says] of cases) {
      const refused = await api.call<Problem>('GET', `/v1/usage?${query}`, { token: tenant.apiKey });
      expectProblem(refused, 400, 'validation_failed');
      expect(refused.text, query).toContain(says);
    }
  });
});
