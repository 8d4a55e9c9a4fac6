import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterSpec, newId } from '#core';
import type { ClusterRecord } from '#store';
import { type ApiHarness, startApiHarness } from '../../test/support/api-harness.ts';
import { newOperation } from './clusters.ts';
import { insideMaintenanceWindow, startDueKubernetesUpgrades } from './kubernetes-upgrades.ts';

let harness: ApiHarness;
beforeAll(async () => {
  harness = await startApiHarness();
});
afterAll(async () => {
  await harness.close();
});

/** Monday 2026-11-30, 03:30 UTC: past 1.34's end of life (2026-10-27), 1.35 offered. */
const MONDAY_0330 = new Date('2026-11-30T03:30:00Z');

/** A Ready cluster on a minor, as it was ordered when that minor was offered. */
async function storedCluster(tenantId: string, kubernetesVersion: string, maintenance: Record<string, unknown>): Promise<ClusterRecord> {
  const id = newId('cluster');
  const spec = ClusterSpec.parse({ name: `c-${id.slice(-8).toLowerCase()}`, region: 'eu-central-1', kubernetesVersion, maintenance, nodePools: [{ name: 'default', size: 1 }] });
  const now = '2026-06-01T00:00:00.000Z';
  const record: ClusterRecord = { tenantId, id, name: spec.name, spec, status: { phase: 'Ready', conditions: [] }, createdAt: now, updatedAt: now, version: 1 };
  await harness.services.store.createCluster(record, newOperation(tenantId, id, 'provision', now));
  return record;
}

describe('the maintenance window', () => {
  const window = { days: ['mon' as const], start: '23:00', durationMinutes: 120 };
  it.each([
    ['2026-11-30T23:30:00Z', true],
    ['2026-12-01T00:59:00Z', true],
    ['2026-12-01T01:00:00Z', false],
    ['2026-11-30T22:59:00Z', false],
    ['2026-12-01T23:30:00Z', false],
  ])('opens at its start on its days and runs past midnight: %s is %s', (at, inside) => {
    expect(insideMaintenanceWindow(window, new Date(at))).toBe(inside);
  });
});

describe('the scheduled upgrade at end of life', () => {
  it('upgrades a cluster past its end of life with autoUpdate on inside its window, with an event first, and leaves the others', async () => {
    const { id: tenantId } = await harness.newTenant();
    const due = await storedCluster(tenantId, '1.34', { window: { days: ['mon'], start: '03:00', durationMinutes: 60 } });
    const closed = await storedCluster(tenantId, '1.34', { window: { days: ['tue'], start: '03:00', durationMinutes: 60 } });
    const manual = await storedCluster(tenantId, '1.34', { autoUpdate: false });
    const current = await storedCluster(tenantId, '1.35', { window: { days: ['mon'], start: '03:00', durationMinutes: 60 } });

    const report = await startDueKubernetesUpgrades(harness.services, MONDAY_0330);
    expect(report.started).toEqual([due.id]);
    for (const other of [closed, manual, current]) expect([...report.started, ...report.deferred]).not.toContain(other.id);

    const upgraded = await harness.services.store.getCluster(tenantId, due.id);
    expect(upgraded?.spec.kubernetesVersion).toBe('1.35');
    expect(upgraded?.status.phase).toBe('Updating');
    const operation = await harness.services.store.getOperation(tenantId, upgraded?.status.activeOperationId ?? '');
    expect(Object.keys(operation?.steps ?? {}).sort()).toEqual(['addons', 'infrastructure', 'join-token', 'roll-control-plane', 'roll-machines', 'verify']);
    const events = (await harness.services.store.listClusterEvents(tenantId, due.id, { limit: 10 })).items;
    const starting = events.find((event) => event.type === 'cluster.kubernetes_upgrade_starting');
    expect(starting?.data).toMatchObject({ from: '1.34', to: '1.35', reason: 'EndOfLife' });
    const updating = events.find((event) => event.type === 'cluster.phase_changed' && event.data.to === 'Updating');
    expect(Date.parse(starting?.occurredAt ?? '')).toBeLessThanOrEqual(Date.parse(updating?.occurredAt ?? ''));

    // Its order names 1.35 now: the next run does not start a second upgrade.
    const next = await startDueKubernetesUpgrades(harness.services, MONDAY_0330);
    expect([...next.started, ...next.deferred]).not.toContain(due.id);
  });

  it('says why a cluster cannot move on when the next minor is not offered', async () => {
    const { id: tenantId } = await harness.newTenant();
    const stuck = await storedCluster(tenantId, '1.35', { window: { days: ['mon'], start: '03:00', durationMinutes: 60 } });
    // Monday 2027-03-01, after 1.35's end of life: 1.36 is held back by the add-on pins.
    const report = await startDueKubernetesUpgrades(harness.services, new Date('2027-03-01T03:30:00Z'));
    expect(report.started).not.toContain(stuck.id);
    expect(report.blocked.find((entry) => entry.clusterId === stuck.id)?.reason).toMatch(/^This cluster cannot upgrade from 1\.35 to 1\.36 today\./);
    expect((await harness.services.store.getCluster(tenantId, stuck.id))?.version).toBe(1);
  });
});
