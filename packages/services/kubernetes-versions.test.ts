import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterSpec, type ClusterStatus, newId } from '#core';
import type { ClusterRecord } from '#store';
import { type ApiHarness, startApiHarness } from '../../test/support/api-harness.ts';
import { newOperation } from './clusters.ts';
import { checkKubernetesVersionSupport, listKubernetesVersions } from './kubernetes-versions.ts';

let harness: ApiHarness;
beforeAll(async () => {
  harness = await startApiHarness();
});
afterAll(async () => {
  await harness.close();
});

const REVIEWED = new Date('2026-11-29T12:00:00Z');

/** A cluster as the store holds it once its provision finished (or in the given state). */
async function storedCluster(tenantId: string, kubernetesVersion: string, status: Partial<ClusterStatus> = {}): Promise<ClusterRecord> {
  const id = newId('cluster');
  const spec = ClusterSpec.parse({ name: `c-${id.slice(-8).toLowerCase()}`, region: 'eu-central-1', kubernetesVersion, nodePools: [{ name: 'default', size: 1 }] });
  const now = '2026-01-05T00:00:00.000Z';
  const record: ClusterRecord = {
    tenantId,
    id,
    name: spec.name,
    spec,
    status: { phase: 'Ready', conditions: [{ type: 'Ready', status: 'True', reason: 'Provisioned', message: 'ok', lastTransitionTime: now }], ...status },
    createdAt: now,
    updatedAt: now,
    version: 1,
  };
  await harness.services.store.createCluster(record, newOperation(tenantId, id, 'provision', now));
  return record;
}

async function conditionsOf(cluster: ClusterRecord): Promise<Record<string, string>> {
  const stored = await harness.services.store.getCluster(cluster.tenantId, cluster.id);
  return Object.fromEntries((stored?.status.conditions ?? []).map((condition) => [condition.type, `${condition.status}/${condition.reason}`]));
}

/** The version-support events of a cluster (its provision's operation.started aside). */
async function eventTypesOf(cluster: ClusterRecord): Promise<string[]> {
  return (await harness.services.store.listClusterEvents(cluster.tenantId, cluster.id, { limit: 50 })).items.map((event) => event.type).filter((type) => type !== 'operation.started');
}

describe('the scheduled Kubernetes version check', () => {
  it('marks a cluster on a minor past its end of life Unsupported, with an event, and writes nothing on the next run', async () => {
    const { id: tenantId } = await harness.newTenant();
    const old = await storedCluster(tenantId, '1.33');
    const current = await storedCluster(tenantId, '1.35');

    const first = await checkKubernetesVersionSupport(harness.services, REVIEWED);
    expect(first.updated).toContain(old.id);
    expect(first.updated).not.toContain(current.id);
    expect(await conditionsOf(old)).toMatchObject({ KubernetesVersionUnsupported: 'True/EndOfLife', KubernetesVersionEndOfLifeSoon: 'False/EndOfLifeReached' });
    expect(await eventTypesOf(old)).toEqual(['cluster.kubernetes_version_unsupported']);
    expect(await conditionsOf(current)).not.toHaveProperty('KubernetesVersionUnsupported');

    const second = await checkKubernetesVersionSupport(harness.services, REVIEWED);
    expect(second.updated).not.toContain(old.id);
    expect((await harness.services.store.getCluster(tenantId, old.id))?.version).toBe(2);
    expect(await eventTypesOf(old)).toHaveLength(1);
  });

  it('warns a cluster within 60 days of its end of life once, then again when the end comes', async () => {
    const { id: tenantId } = await harness.newTenant();
    const cluster = await storedCluster(tenantId, '1.35');

    expect((await checkKubernetesVersionSupport(harness.services, new Date('2027-01-15T00:00:00Z'))).updated).toContain(cluster.id);
    expect(await conditionsOf(cluster)).toMatchObject({ KubernetesVersionEndOfLifeSoon: 'True/EndOfLifeSoon', KubernetesVersionUnsupported: 'False/Maintained' });
    expect((await checkKubernetesVersionSupport(harness.services, new Date('2027-02-01T00:00:00Z'))).updated).not.toContain(cluster.id);

    expect((await checkKubernetesVersionSupport(harness.services, new Date('2027-03-01T00:00:00Z'))).updated).toContain(cluster.id);
    expect(await conditionsOf(cluster)).toMatchObject({ KubernetesVersionUnsupported: 'True/EndOfLife' });
    expect((await eventTypesOf(cluster)).sort()).toEqual(['cluster.kubernetes_version_end_of_life_soon', 'cluster.kubernetes_version_unsupported']);
  });

  it('leaves a cluster busy with an operation to that operation, and never touches a deleted one', async () => {
    const { id: tenantId } = await harness.newTenant();
    const busy = await storedCluster(tenantId, '1.33', { phase: 'Updating', activeOperationId: newId('operation') });
    const deleted = await storedCluster(tenantId, '1.33', { phase: 'Deleted' });

    const report = await checkKubernetesVersionSupport(harness.services, REVIEWED);
    expect(report.deferred).toContain(busy.id);
    expect(report.updated).not.toContain(busy.id);
    expect([...report.updated, ...report.deferred]).not.toContain(deleted.id);
    expect(await conditionsOf(busy)).not.toHaveProperty('KubernetesVersionUnsupported');
    expect(await eventTypesOf(deleted)).toEqual([]);
  });
});

describe('the Kubernetes versions the API lists', () => {
  it('are the offered minors with their facts, the default marked', () => {
    expect(listKubernetesVersions(REVIEWED)).toEqual({
      items: [{ version: '1.35', patchRelease: 'v1.35.9', releaseDate: '2025-12-17', maintenanceModeDate: '2026-12-28', endOfLifeDate: '2027-02-28', default: true }],
    });
  });
});
