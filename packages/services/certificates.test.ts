import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterSpec, type ClusterStatus, type Problem, newId } from '#core';
import type { ClusterRecord } from '#store';
import { expectProblem } from '../../test/support/api.ts';
import { type ApiHarness, startApiHarness } from '../../test/support/api-harness.ts';
import { CERTIFICATE_RENEWAL_DAYS, startDueCertificateRenewals } from './certificates.ts';
import { newOperation } from './clusters.ts';

let harness: ApiHarness;
beforeAll(async () => {
  harness = await startApiHarness();
});
afterAll(async () => {
  await harness.close();
});

const DAY = 86_400_000;
const EXPIRES = '2027-11-30T08:00:00.000Z';

/** A Ready cluster as its provision leaves it: machines in Auto Scaling groups, certificates seen by verify (the harness runs no workflows). */
async function storedCluster(tenantId: string, status: Partial<ClusterStatus> = {}, machines = true): Promise<ClusterRecord> {
  const id = newId('cluster');
  const spec = ClusterSpec.parse({ name: `c-${id.slice(-8).toLowerCase()}`, region: 'eu-central-1', nodePools: [{ name: 'default', size: 1 }] });
  const now = new Date().toISOString();
  const record: ClusterRecord = {
    tenantId,
    id,
    name: spec.name,
    spec,
    status: {
      phase: 'Ready',
      conditions: [],
      certificates: { authorityExpiresAt: '2036-11-30T08:00:00.000Z', apiServerExpiresAt: EXPIRES, earliestExpiresAt: EXPIRES, checkedAt: now },
      ...status,
    },
    ...(machines ? { machineGroups: { controlPlane: `${id}-cp`, pools: { default: `${id}-pool-default` } } } : {}),
    createdAt: now,
    updatedAt: now,
    version: 1,
  };
  await harness.services.store.createCluster(record, newOperation(tenantId, id, 'provision', now));
  return record;
}

describe('POST /v1/clusters/{id}/certificate-renewals', () => {
  it('starts a renewal that rolls the control plane, and answers a second request with the same renewal while it runs', async () => {
    const { id: tenantId, apiKey } = await harness.newTenant();
    const cluster = await storedCluster(tenantId);
    const first = await harness.call<{ id: string; type: string; steps: { name: string }[] }>('POST', `/v1/clusters/${cluster.id}/certificate-renewals`, { token: apiKey });
    expect(first.status).toBe(202);
    expect(first.headers.get('location')).toBe(`/v1/operations/${first.body.id}`);
    expect(first.body.type).toBe('renew-certificates');
    expect(first.body.steps.map((step) => step.name)).toEqual(['join-token', 'roll-control-plane', 'addons', 'verify']);
    const stored = await harness.services.store.getCluster(tenantId, cluster.id);
    expect(stored?.status).toMatchObject({ phase: 'Updating', activeOperationId: first.body.id });

    const second = await harness.call<{ id: string }>('POST', `/v1/clusters/${cluster.id}/certificate-renewals`, { token: apiKey });
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
    expect((await harness.services.store.getCluster(tenantId, cluster.id))?.version).toBe(stored?.version);
  });

  it('answers 409 while another operation runs, and for a cluster without machines, changing nothing', async () => {
    const { id: tenantId, apiKey } = await harness.newTenant();
    const busy = await storedCluster(tenantId, { phase: 'Updating', activeOperationId: newId('operation') });
    const refused = await harness.call<Problem>('POST', `/v1/clusters/${busy.id}/certificate-renewals`, { token: apiKey });
    expectProblem(refused, 409, 'conflict');
    expect(refused.body.detail).toContain(busy.status.activeOperationId);
    expect((await harness.services.store.getCluster(tenantId, busy.id))?.version).toBe(1);

    const bare = await storedCluster(tenantId, {}, false);
    const noMachines = await harness.call<Problem>('POST', `/v1/clusters/${bare.id}/certificate-renewals`, { token: apiKey });
    expectProblem(noMachines, 409, 'conflict');
    expect(noMachines.body.detail).toContain('no machines');
    expect((await harness.services.store.getCluster(tenantId, bare.id))?.version).toBe(1);
    expectProblem(await harness.call<Problem>('POST', `/v1/clusters/${newId('cluster')}/certificate-renewals`, { token: apiKey }), 404, 'not_found');
  });
});

describe('the scheduled certificate check', () => {
  it('renews a cluster once its earliest certificate is within the threshold, and defers it while the renewal runs', async () => {
    const { id: tenantId } = await harness.newTenant();
    const cluster = await storedCluster(tenantId);
    const unseen = await storedCluster(tenantId, { certificates: undefined });
    const early = new Date(Date.parse(EXPIRES) - (CERTIFICATE_RENEWAL_DAYS + 1) * DAY);
    const due = new Date(Date.parse(EXPIRES) - (CERTIFICATE_RENEWAL_DAYS - 1) * DAY);

    const before = await startDueCertificateRenewals(harness.services, early);
    expect([...before.started, ...before.deferred]).not.toContain(cluster.id);
    const report = await startDueCertificateRenewals(harness.services, due);
    expect(report.started).toContain(cluster.id);
    expect([...report.started, ...report.deferred]).not.toContain(unseen.id);
    const stored = await harness.services.store.getCluster(tenantId, cluster.id);
    const operation = await harness.services.store.getOperation(tenantId, stored?.status.activeOperationId ?? '');
    expect(operation?.type).toBe('renew-certificates');

    const next = await startDueCertificateRenewals(harness.services, due);
    expect(next.started).not.toContain(cluster.id);
    expect(next.deferred).toContain(cluster.id);
  });
});
