import type { ClusterNodeList } from '#core';
import { findCluster } from './clusters.ts';
import type { KilnServices } from './context.ts';

/** The cluster's machines as the health poller last saw them, and why remediation holds, if it does. */
export async function listClusterNodes(services: KilnServices, tenantId: string, clusterId: string): Promise<ClusterNodeList> {
  await findCluster(services, tenantId, clusterId);
  const health = await services.store.getNodeHealth(tenantId, clusterId);
  return { items: health?.nodes ?? [], remediationPaused: health?.holds ?? [], ...(health === undefined ? {} : { observedAt: health.observedAt }) };
}
