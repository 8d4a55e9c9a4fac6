import { ConflictError, type Operation, phaseChange } from '#core';
import type { ClusterRecord } from '#store';
import { assertIdle, findCluster, launch, newOperation } from './clusters.ts';
import type { KilnServices } from './context.ts';
import { operationView } from './views.ts';

/**
 * Starts rotating the cluster's Secret-encryption key. Clusters whose at-rest
 * provider is KMS have no key Kiln holds (KMS rotates its own); a cluster with
 * another operation running answers 409 naming it.
 */
export async function startKeyRotation(services: KilnServices, tenantId: string, clusterId: string): Promise<Operation> {
  const cluster = await findCluster(services, tenantId, clusterId);
  assertIdle(cluster, 'rotate');
  // A Failed cluster may retry: an interrupted rotation resumes from its recorded state.
  if (cluster.status.phase !== 'Ready' && cluster.status.phase !== 'Failed') {
    throw new ConflictError(`Keys rotate on a Ready cluster; this one is ${cluster.status.phase}.`);
  }
  if (cluster.encryption === undefined) {
    throw new ConflictError('This cluster encrypts Secrets with KMS v2, whose key KMS rotates itself; there is no Kiln-held key to rotate.');
  }
  const now = new Date().toISOString();
  const operation = newOperation(tenantId, clusterId, 'rotate-encryption-key', now, [], {}, services.requestId);
  // Off the schedule while it runs; a completed rotation sets the next due time.
  const { nextRotationAt: _due, ...encryption } = cluster.encryption;
  const rotating: ClusterRecord = { ...cluster, encryption, status: { ...cluster.status, phase: 'Updating', activeOperationId: operation.id } };
  await services.store.beginOperation(rotating, cluster.version, operation, undefined, phaseChange(clusterId, cluster.status.phase, 'Updating'));
  await launch(services, 'rotate-encryption-key', operation);
  return operationView(operation);
}

export interface ScheduledRotations {
  started: string[];
  deferred: string[];
}

/**
 * The scheduled check: starts the rotations that rotationPeriodDays made due.
 * A cluster that is busy (or not Ready) is left in the index and tried again
 * on the next run.
 */
export async function startDueRotations(services: KilnServices, now = new Date()): Promise<ScheduledRotations> {
  const report: ScheduledRotations = { started: [], deferred: [] };
  for (const due of await services.store.listDueRotations(now)) {
    try {
      await startKeyRotation(services, due.tenantId, due.clusterId);
      report.started.push(due.clusterId);
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      report.deferred.push(due.clusterId);
    }
  }
  if (report.started.length + report.deferred.length > 0) services.log.info('scheduled key rotations', { ...report });
  return report;
}
