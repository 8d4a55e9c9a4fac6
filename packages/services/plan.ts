import { type ClusterSpec, type OperationType, type PlannedMachine, kubernetesReleaseOf } from '#core';
import type { ClusterRecord } from '#store';
import type { KilnServices } from './context.ts';

/**
 * What an operation's machine steps will do, said before it starts: from the health poller's last look at the
 * cluster (its machines, nodes and kubelet releases), the control plane machines a renewal or an upgrade replaces,
 * the pool machines an instance type change or an upgrade replaces, and the machines of a pool that goes. A
 * shrinking pool's leaving machines are chosen when its drain starts (the unready first, then by zone and age), so
 * they are not named here. Empty before the poller's first look.
 */
export async function plannedMachines(
  services: KilnServices,
  cluster: ClusterRecord,
  spec: ClusterSpec,
  type: OperationType,
  steps: readonly string[],
): Promise<Record<string, PlannedMachine[]>> {
  const observed = (await services.store.getNodeHealth(cluster.tenantId, cluster.id))?.nodes ?? [];
  const release = kubernetesReleaseOf(spec.kubernetesVersion)?.patch;
  const upgrading = spec.kubernetesVersion !== cluster.spec.kubernetesVersion || observed.some((machine) => machine.kubeletVersion !== undefined && machine.kubeletVersion !== release);
  const machine = (observation: (typeof observed)[number], action: PlannedMachine['action'], reason: PlannedMachine['reason']): PlannedMachine => ({
    ...(observation.instanceId === undefined ? {} : { instanceId: observation.instanceId }),
    ...(observation.name === undefined ? {} : { nodeName: observation.name }),
    role: observation.role,
    ...(observation.pool === undefined ? {} : { pool: observation.pool }),
    action,
    reason,
  });
  const plan: Record<string, PlannedMachine[]> = {};
  if (steps.includes('roll-control-plane')) {
    const renewing = type === 'renew-certificates';
    plan['roll-control-plane'] = observed
      .filter((observation) => observation.role === 'control-plane' && (renewing || observation.kubeletVersion !== release))
      .map((observation) => machine(observation, 'replace', renewing ? 'CertificateRenewal' : 'KubernetesUpgrade'));
  }
  if (steps.includes('roll-machines')) {
    plan['roll-machines'] = observed.flatMap((observation) => {
      const before = cluster.spec.nodePools.find((pool) => pool.name === observation.pool);
      const after = spec.nodePools.find((pool) => pool.name === observation.pool);
      if (observation.role !== 'worker' || before === undefined || after === undefined) return [];
      if (before.instanceType !== after.instanceType) return [machine(observation, 'replace', 'InstanceTypeChanged')];
      return upgrading && observation.kubeletVersion !== release ? [machine(observation, 'replace', 'KubernetesUpgrade')] : [];
    });
  }
  if (steps.includes('drain-nodes')) {
    plan['drain-nodes'] = observed
      .filter((observation) => observation.role === 'worker' && !spec.nodePools.some((pool) => pool.name === observation.pool))
      .map((observation) => machine(observation, 'remove', 'PoolRemoved'));
  }
  return plan;
}
