import { WorkflowInput } from '#core';
import type { InfrastructureDriver } from '#infra';
import { updateCluster, updateOperation, withCondition } from '../mutations.ts';
import type { KilnServices } from '../services.ts';
import { type StepResult, runStep } from './step-runner.ts';

/** Pulumi destroy of everything the cluster's stack holds; destroying nothing is fine. */
export async function destroyStep(services: KilnServices, driver: InfrastructureDriver, input: unknown): Promise<StepResult<Record<string, unknown>>> {
  return runStep(services, input, 'destroy', async ({ cluster, input: { tenantId, clusterId } }) => {
    await driver.destroy({ tenantId, clusterId });
    await services.inCluster(cluster).machineSecrets.revoke(clusterId);
    return { done: true, outputs: { destroyedAt: new Date().toISOString() } };
  });
}

export async function markDeletedStep(services: KilnServices, rawInput: unknown): Promise<void> {
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
  services.log.info('cluster deleted', { tenantId, clusterId, operationId });
}
