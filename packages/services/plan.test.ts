import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterSpec, type NodeObservation, newId } from '#core';
import type { ClusterRecord } from '#store';
import { type ApiHarness, startApiHarness } from '../../test/support/api-harness.ts';
import { plannedMachines } from './plan.ts';

let harness: ApiHarness;
beforeAll(async () => {
  harness = await startApiHarness();
});
afterAll(async () => {
  await harness.close();
});

const spec = ClusterSpec.parse({
  name: 'planned',
  region: 'eu-central-1',
  controlPlane: { replicas: 3 },
  nodePools: [
    { name: 'web', size: 2 },
    { name: 'batch', size: 1 },
  ],
});
const node = (name: string, role: 'control-plane' | 'worker', pool?: string, kubeletVersion = 'v1.35.9'): NodeObservation => ({
  name,
  instanceId: `i-${name}`,
  role,
  ...(pool === undefined ? {} : { pool }),
  kubeletVersion,
  health: 'Healthy',
});

/** A cluster the health poller has looked at: three control plane machines, two web machines (one behind on its patch), one batch. */
async function observedCluster(): Promise<ClusterRecord> {
  const { id: tenantId } = await harness.newTenant();
  const id = newId('cluster');
  const now = new Date().toISOString();
  const cluster: ClusterRecord = { tenantId, id, name: spec.name, spec, status: { phase: 'Ready', conditions: [] }, createdAt: now, updatedAt: now, version: 1 };
  const nodes = [node('cp-0', 'control-plane'), node('cp-1', 'control-plane'), node('cp-2', 'control-plane'), node('web-0', 'worker', 'web'), node('web-1', 'worker', 'web', 'v1.35.8'), node('batch-0', 'worker', 'batch')];
  await harness.services.store.saveNodeHealth({ tenantId, clusterId: id, nodes, holds: [], observedAt: now }, 0);
  return cluster;
}

describe('the machines an operation plans to replace or remove', () => {
  it('names every control plane machine for a renewal', async () => {
    const cluster = await observedCluster();
    const plan = await plannedMachines(harness.services, cluster, spec, 'renew-certificates', ['join-token', 'roll-control-plane', 'addons', 'verify']);
    expect(plan['roll-control-plane']?.map((machine) => [machine.nodeName, machine.instanceId, machine.action, machine.reason])).toEqual([
      ['cp-0', 'i-cp-0', 'replace', 'CertificateRenewal'],
      ['cp-1', 'i-cp-1', 'replace', 'CertificateRenewal'],
      ['cp-2', 'i-cp-2', 'replace', 'CertificateRenewal'],
    ]);
    expect(Object.keys(plan)).toEqual(['roll-control-plane']);
  });

  it('names the machines of a pool whose instance type changes, and those of a pool that goes', async () => {
    const cluster = await observedCluster();
    const after = { ...spec, nodePools: [{ ...spec.nodePools[0], name: 'web', size: 2, instanceType: 'm7i.xlarge' }] } as ClusterSpec;
    const plan = await plannedMachines(harness.services, cluster, after, 'update', ['drain-nodes', 'remove-machines', 'join-token', 'infrastructure', 'roll-machines']);
    expect(plan['roll-machines']?.map((machine) => [machine.nodeName, machine.reason])).toEqual([
      ['web-0', 'InstanceTypeChanged'],
      ['web-1', 'InstanceTypeChanged'],
    ]);
    expect(plan['drain-nodes']?.map((machine) => [machine.nodeName, machine.action, machine.reason])).toEqual([['batch-0', 'remove', 'PoolRemoved']]);
  });

  it('names, for an upgrade, the machines whose kubelet is not the release the order installs', async () => {
    const cluster = await observedCluster();
    const plan = await plannedMachines(harness.services, cluster, spec, 'update', ['join-token', 'infrastructure', 'roll-control-plane', 'roll-machines']);
    // The order's minor is 1.35, which installs v1.35.9: only web-1 is behind.
    expect(plan['roll-control-plane']).toEqual([]);
    expect(plan['roll-machines']?.map((machine) => [machine.nodeName, machine.reason])).toEqual([['web-1', 'KubernetesUpgrade']]);
  });
});
