import { WorkflowInput } from '#core';
import { updateCluster, updateOperation, versionSupportEvents, withCondition, withVersionSupport } from '#services';
import type { ClusterRecord } from '#store';
import type { StepServices } from './context.ts';
import { withdrawJoinMaterial } from './join-material.ts';

/** The last state of a successful provision: the operation succeeds and the cluster is Ready. */
export async function markReadyStep(services: StepServices, rawInput: unknown): Promise<void> {
  const input = WorkflowInput.parse(rawInput);
  const { tenantId, clusterId, operationId } = input;
  // Every machine the workflow added has joined (verify saw them Ready): their join tokens have done their work.
  await withdrawJoinMaterial(services, input, true);
  const now = new Date().toISOString();
  const operation = await updateOperation(services, tenantId, operationId, (current) => ({ ...current, state: 'succeeded', finishedAt: current.finishedAt ?? now }));
  const reason = operation.type === 'provision' ? 'Provisioned' : 'Updated';
  const at = new Date(now);
  await updateCluster(
    services,
    tenantId,
    clusterId,
    (cluster) => {
      const { activeOperationId: _finished, reason: _reason, ...status } = cluster.status;
      const ready: ClusterRecord = {
        ...cluster,
        status: {
          ...status,
          phase: 'Ready',
          conditions: withCondition(status.conditions, { type: 'Ready', status: 'True', reason, message: 'All nodes are Ready and hardening is verified.' }, now),
        },
      };
      // Every finished operation states where the cluster's Kubernetes stands, so an upgrade clears an end-of-life warning at once.
      return withVersionSupport(ready, at) ?? ready;
    },
    (before, after) => versionSupportEvents(before, after, at),
  );
  services.log.info('cluster ready', { tenantId, clusterId, operationId });
}
