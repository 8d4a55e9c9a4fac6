import { type ClusterNodeList, type NodeRemediation, workflowStepOrder } from '#core';
import type { OperationRecord } from '#store';
import { findCluster } from './clusters.ts';
import type { KilnServices } from './context.ts';

/** How many of a cluster's newest operations are searched for each machine's last remediation. */
const REMEDIATION_LOOKBACK = 50;

/** The cluster's machines as the health poller last saw them, each with its newest remediation, and why remediation holds, if it does. */
export async function listClusterNodes(services: KilnServices, tenantId: string, clusterId: string): Promise<ClusterNodeList> {
  await findCluster(services, tenantId, clusterId);
  const [health, operations] = await Promise.all([
    services.store.getNodeHealth(tenantId, clusterId),
    services.store.listClusterOperations(tenantId, clusterId, { limit: REMEDIATION_LOOKBACK }),
  ]);
  const remediations = lastRemediations(operations.items);
  const items = (health?.nodes ?? []).map((node) => {
    const remediation = node.instanceId === undefined ? undefined : remediations.get(node.instanceId);
    return remediation === undefined ? node : { ...node, lastRemediation: remediation };
  });
  return { items, remediationPaused: health?.holds ?? [], ...(health === undefined ? {} : { observedAt: health.observedAt }) };
}

/** The newest remediate-node operation of each instance (operations come newest first). */
function lastRemediations(operations: readonly OperationRecord[]): Map<string, NodeRemediation> {
  const newest = new Map<string, NodeRemediation>();
  for (const operation of operations) {
    if (operation.type !== 'remediate-node' || operation.target === undefined || newest.has(operation.target.instanceId)) continue;
    const lastStep = workflowStepOrder(operation.type).findLast((name) => operation.steps[name] !== undefined && operation.steps[name].state !== 'pending');
    newest.set(operation.target.instanceId, {
      operationId: operation.id,
      state: operation.state,
      ...(lastStep === undefined ? {} : { lastStep }),
      startedAt: operation.createdAt,
      ...(operation.finishedAt === undefined ? {} : { finishedAt: operation.finishedAt }),
    });
  }
  return newest;
}
