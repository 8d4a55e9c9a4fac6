import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type UsagePeriod, newId } from '#core';
import { VersionConflictError } from '#store';
import { type ApiHarness, startApiHarness } from '../../test/support/api-harness.ts';
import { listTenantEvents } from './events.ts';
import { type MeteredMachine, USAGE_SETTLE_MINUTES, endClusterUsage, getUsage, meterCluster, reportUsage, usageOfHour } from './usage.ts';

let api: ApiHarness;
beforeAll(async () => {
  api = await startApiHarness();
});
afterAll(async () => {
  await api.close();
});

const HOUR = 3600_000;
const MINUTE = 60_000;
/** An hour boundary in the past, fixed so the figures below are exact. */
const H = Date.UTC(2026, 10, 2, 10);
const spec = { controlPlane: { replicas: 1, instanceType: 'm7i.large' }, nodePools: [{ name: 'a', instanceType: 'c7i.xlarge', size: 2, labels: {}, taints: [] }] };
const machine = (instanceId: string, group: MeteredMachine['group'], state = 'running', instanceType?: string): MeteredMachine => ({
  instanceId,
  group,
  state,
  ...(instanceType === undefined ? {} : { instanceType }),
});
const cp = { role: 'control-plane' } as const;
const poolA = { role: 'worker', pool: 'a' } as const;
const seconds = (period: UsagePeriod | undefined) => period?.items.map((row) => [row.role, row.pool ?? '-', row.instanceType, row.nodeSeconds]);

describe('usage', () => {
  it('counts each machine from the poll that saw it running to the one that did not, per hour, pool and instance type', () => {
    const clusterId = newId('cluster');
    const usage = [
      { tenantId: 't', clusterId, instanceId: 'i-1', role: 'control-plane' as const, instanceType: 'm7i.large', startedAt: new Date(H - 30 * MINUTE).toISOString() },
      { tenantId: 't', clusterId, instanceId: 'i-2', role: 'worker' as const, pool: 'a', instanceType: 'c7i.xlarge', startedAt: new Date(H + 15 * MINUTE).toISOString(), endedAt: new Date(H + 45 * MINUTE + 500).toISOString() },
      { tenantId: 't', clusterId, instanceId: 'i-3', role: 'worker' as const, pool: 'a', instanceType: 'c7i.xlarge', startedAt: new Date(H + 2 * HOUR).toISOString() },
    ];
    const hour = usageOfHour(usage, H);
    expect(hour).toMatchObject({ from: new Date(H).toISOString(), to: new Date(H + HOUR).toISOString(), nodeSeconds: 3600 + 1801 });
    expect(seconds(hour)).toEqual([
      ['control-plane', '-', 'm7i.large', 3600],
      ['worker', 'a', 'c7i.xlarge', 1801],
    ]);
    expect(hour.items[1]?.nodeHours).toBe(0.500278);
    expect(usageOfHour(usage, H + HOUR).nodeSeconds).toBe(3600);
  });

  it('reports every settled hour once, with a usage.reported event whose figures GET /v1/usage gives too, per hour and per day', async () => {
    const tenant = await api.newTenant();
    const cluster = { tenantId: tenant.id, id: newId('cluster'), spec };
    // 10:20 three machines run; 11:30 i-3 is replaced by i-4 (EC2 did not say its type: the pool's); 12:10 deleted.
    expect(await meterCluster(api.services, cluster, [machine('i-1', cp, 'running', 'm7i.large'), machine('i-2', poolA, 'pending', 'c7i.xlarge'), machine('i-3', poolA, 'running', 'c7i.xlarge')], new Date(H + 20 * MINUTE))).toEqual({ opened: 3, closed: 0 });
    expect(await meterCluster(api.services, cluster, [machine('i-1', cp, 'running', 'm7i.large'), machine('i-2', poolA, 'running', 'c7i.xlarge'), machine('i-3', poolA, 'running', 'c7i.xlarge')], new Date(H + 50 * MINUTE))).toEqual({ opened: 0, closed: 0 });
    expect(await meterCluster(api.services, cluster, [machine('i-1', cp, 'running', 'm7i.large'), machine('i-2', poolA, 'running', 'c7i.xlarge'), machine('i-3', poolA, 'shutting-down', 'c7i.xlarge'), machine('i-4', poolA)], new Date(H + 90 * MINUTE))).toEqual({ opened: 1, closed: 1 });
    await endClusterUsage(api.services, tenant.id, cluster.id, new Date(H + 130 * MINUTE));

    // Before an hour has settled it is not reported.
    expect((await reportUsage(api.services, new Date(H + HOUR + (USAGE_SETTLE_MINUTES - 1) * MINUTE))).hours).toBe(0);
    // Two reporters at once (two scheduled runs overlapping) report each hour once.
    const now = new Date(H + 4 * HOUR + USAGE_SETTLE_MINUTES * MINUTE);
    const runs = await Promise.all([reportUsage(api.services, now), reportUsage(api.services, now)]);
    expect(runs.reduce((sum, run) => sum + run.events, 0)).toBe(3);
    expect((await reportUsage(api.services, now)).hours).toBe(0);

    const events = (await listTenantEvents(api.services, tenant.id, { types: ['usage.reported'], limit: 10 }, new Date(Date.now() + 60_000))).items.map((event) => event.data as UsagePeriod);
    expect(events.map((event) => event.from)).toEqual([0, 1, 2].map((hour) => new Date(H + hour * HOUR).toISOString()));
    expect(events.map(seconds)).toEqual([
      [
        ['control-plane', '-', 'm7i.large', 2400],
        ['worker', 'a', 'c7i.xlarge', 4800],
      ],
      [
        ['control-plane', '-', 'm7i.large', 3600],
        ['worker', 'a', 'c7i.xlarge', 3600 + 1800 + 1800],
      ],
      [
        ['control-plane', '-', 'm7i.large', 600],
        ['worker', 'a', 'c7i.xlarge', 1200],
      ],
    ]);

    const hourly = await getUsage(api.services, tenant.id, { from: new Date(H), to: new Date(H + 5 * HOUR), granularity: 'hour' });
    // Hour 13:00-14:00 ended but had nothing; 14:00 has not settled.
    expect(hourly.reportedThrough).toBe(new Date(H + 4 * HOUR).toISOString());
    expect(hourly.periods.map((period) => period.from)).toEqual([0, 1, 2, 3].map((hour) => new Date(H + hour * HOUR).toISOString()));
    expect(hourly.periods.slice(0, 3)).toEqual(events);
    expect(hourly.periods[3]).toMatchObject({ items: [], nodeSeconds: 0 });

    const day = Date.UTC(2026, 10, 2);
    const daily = await getUsage(api.services, tenant.id, { from: new Date(day), to: new Date(day + 24 * HOUR), granularity: 'day' });
    // The day has not ended as far as reports go: it is not listed yet.
    expect(daily.periods).toEqual([]);
    const later = await reportUsage(api.services, new Date(day + 24 * HOUR + USAGE_SETTLE_MINUTES * MINUTE));
    expect(later.events).toBe(0);
    const [whole] = (await getUsage(api.services, tenant.id, { from: new Date(day), to: new Date(day + 24 * HOUR), granularity: 'day' })).periods;
    expect(whole?.nodeSeconds).toBe(events.reduce((sum, event) => sum + event.nodeSeconds, 0));
    expect(seconds(whole)).toEqual([
      ['control-plane', '-', 'm7i.large', 2400 + 3600 + 600],
      ['worker', 'a', 'c7i.xlarge', 4800 + 7200 + 1200],
    ]);
  });

  it('writes usage only against the metering it read: a racing poll changes nothing', async () => {
    const tenant = await api.newTenant();
    const clusterId = newId('cluster');
    await meterCluster(api.services, { tenantId: tenant.id, id: clusterId, spec }, [machine('i-9', cp)], new Date(H));
    const stale = { tenantId: tenant.id, clusterId, instanceId: 'i-10', role: 'control-plane' as const, instanceType: 'm7i.large', startedAt: new Date(H + MINUTE).toISOString() };
    await expect(api.services.store.saveMachineUsage(tenant.id, clusterId, 0, { open: [stale], closed: [] })).rejects.toThrow(VersionConflictError);
    expect((await api.services.store.listMachineUsage(tenant.id, clusterId)).map((usage) => usage.instanceId)).toEqual(['i-9']);
  });
});
