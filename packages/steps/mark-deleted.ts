import { WorkflowInput } from '#core';
import { endClusterUsage, updateCluster, updateOperation, withCondition } from '#services';
import type { StepServices } from './context.ts';

export async function markDeletedStep(services: StepServices, rawInput: unknown): Promise<void> {
  const { tenantId, clusterId, operationId } = WorkflowInput.parse(rawInput);
  const now = new Date().toISOString();
  await updateOperation(services, tenantId, operationId, (operation) => ({ ...operation, state: 'succeeded', finishedAt: operation.finishedAt ?? now }));
  const cluster = await updateCluster(services, tenantId, clusterId, (current) => {
    // Sealed secrets of a deleted cluster have nothing left to protect access to; drop them.
    const { sealed: _secrets, ...rest } = current;
    const { activeOperationId: _finished, endpoint: _gone, ...status } = current.status;
    return {
      ...rest,
      status: {
        ...status,
        phase: 'Deleted',
        conditions: withCondition(status.conditions, { type: 'Ready', status: 'False', reason: 'Deleted', message: 'The cluster and its infrastructure are gone.' }, now),
      },
    };
  });
  await services.store.releaseClusterName(tenantId, cluster.name, clusterId);
  // Its machines are destroyed: their usage ends now, whatever the last health poll saw.
  await endClusterUsage(services, tenantId, clusterId, new Date());
  services.log.info('cluster deleted', { tenantId, clusterId, operationId });
}
