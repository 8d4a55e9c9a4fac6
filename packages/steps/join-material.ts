import { CoreV1Api } from '@kubernetes/client-node';
import { CONTROL_PLANE_PKI_FILES, type MachineRole } from '#bootstrap';
import type { WorkflowInput } from '#core';
import { type KilnServices, updateCluster } from '#services';
import type { ClusterRecord, OperationRecord } from '#store';
import { clusterApi } from './cluster-api.ts';
import type { ClusterAws, ClusterLocation } from './context.ts';

/**
 * What joining machines read and no running machine needs: the bootstrap token of each role, and the cluster's CA and
 * service-account keys a control plane machine joins with. Every operation that adds machines publishes them again.
 */
const JOIN_MATERIAL: readonly { role: MachineRole; name: string }[] = [
  { role: 'control-plane', name: 'join-token' },
  { role: 'worker', name: 'join-token' },
  ...CONTROL_PLANE_PKI_FILES.map((file) => ({ role: 'control-plane' as const, name: `pki/${file}` })),
];

/** Where the bootstrap step keeps the provisioning token, sealed. */
export const PROVISIONING_TOKEN = 'bootstrapToken';

/**
 * The public ids of the bootstrap tokens an operation minted, as its steps recorded them (`bootstrapTokenId` of the
 * provision's bootstrap step, `joinTokenId` of the join-token and replace steps): a tenant's own tokens are never touched.
 */
export function bootstrapTokenIdsOf(operation: OperationRecord): string[] {
  const ids = Object.values(operation.steps).flatMap((step) => {
    const outputs = step.outputs ?? {};
    return [outputs, ...Object.values(outputs)].flatMap((value) => {
      if (typeof value !== 'object' || value === null) return [];
      const { bootstrapTokenId, joinTokenId } = value as { bootstrapTokenId?: unknown; joinTokenId?: unknown };
      return [bootstrapTokenId, joinTokenId].filter((id): id is string => typeof id === 'string' && id !== '');
    });
  });
  return [...new Set(ids)];
}

type JoinMaterialServices = KilnServices & { inCluster(cluster: ClusterLocation): Pick<ClusterAws, 'machineSecrets'> };

/** The operations of the cluster other than `operationId` still running: they may have machines still joining. */
function othersInFlight(cluster: ClusterRecord, operationId: string): string[] {
  return [cluster.status.activeOperationId, ...(cluster.status.remediations ?? [])].filter((id): id is string => id !== undefined && id !== operationId);
}

/**
 * Called as the workflow `operationId` ends, whatever its outcome, which the withdrawal never changes: a failure to
 * withdraw is logged as an error (the tokens still expire with their TTL).
 */
export async function withdrawJoinMaterial(services: JoinMaterialServices, input: WorkflowInput, revokeInCluster: boolean): Promise<void> {
  const { tenantId, clusterId, operationId } = input;
  try {
    await withdraw(services, tenantId, clusterId, operationId, revokeInCluster);
  } catch (error) {
    services.log.error('join material not withdrawn', { tenantId, clusterId, operationId, error: { name: error instanceof Error ? error.name : 'Error', message: error instanceof Error ? error.message : String(error) } });
  }
}

/**
 * Once the workflow `operationId` ends, no machine needs a join token any more, unless another operation of the cluster
 * is still running (remediations run side by side): the tokens go from the machine secret store, every version of them,
 * and, with `revokeInCluster`, Kiln's bootstrap tokens go from the cluster too, so what a machine read is worthless. A
 * token left in the cluster (an operation that failed, a cluster out of reach) expires with its TTL and kubeadm's
 * tokencleaner controller deletes it.
 */
async function withdraw(services: JoinMaterialServices, tenantId: string, clusterId: string, operationId: string, revokeInCluster: boolean): Promise<void> {
  const cluster = await services.store.getCluster(tenantId, clusterId);
  if (cluster === undefined) return;
  const log = services.log.child({ tenantId, clusterId, operationId });
  const others = othersInFlight(cluster, operationId);
  if (others.length > 0) {
    log.info('join material kept for the operations still running', { operations: others });
    return;
  }
  await services.inCluster(cluster).machineSecrets.withdraw(clusterId, JOIN_MATERIAL);
  // The provisioning token's sealed copy (the bootstrap step's, for a re-run of that step) has no re-run left to serve.
  if (cluster.sealed?.[PROVISIONING_TOKEN] !== undefined) {
    await updateCluster(services, tenantId, clusterId, (current) => {
      const { [PROVISIONING_TOKEN]: _used, ...sealed } = current.sealed ?? {};
      return { ...current, sealed };
    });
  }
  const operation = await services.store.getOperation(tenantId, operationId);
  const tokenIds = operation === undefined ? [] : bootstrapTokenIdsOf(operation);
  if (revokeInCluster && tokenIds.length > 0) {
    // `kubeadm token delete` deletes the token's Secret, kube-system/bootstrap-token-<id> (cmd/kubeadm/app/cmd/token.go).
    const core = (await clusterApi(services, cluster, 'withdraw-join-material')).makeApiClient(CoreV1Api);
    for (const id of tokenIds) await deleteIfPresent(core, `bootstrap-token-${id}`);
  }
  log.info('join material withdrawn', { revokedInCluster: revokeInCluster ? tokenIds.length : 0 });
}

async function deleteIfPresent(core: CoreV1Api, name: string): Promise<void> {
  try {
    await core.deleteNamespacedSecret({ namespace: 'kube-system', name });
  } catch (error) {
    if (!(typeof error === 'object' && error !== null && 'code' in error && error.code === 404)) throw error;
  }
}
