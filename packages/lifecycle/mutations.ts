import { type Condition, KilnError, NotFoundError, canTransition } from '#core';
import { type ClusterRecord, type OperationRecord, VersionConflictError } from '#store';
import type { KilnServices } from './services.ts';

const ATTEMPTS = 5;

/** Read-modify-write with the version guard, retried when another writer got there first. */
export async function updateCluster(
  services: KilnServices,
  tenantId: string,
  clusterId: string,
  mutate: (cluster: ClusterRecord) => ClusterRecord,
): Promise<ClusterRecord> {
  for (let attempt = 1; ; attempt++) {
    const current = await services.store.getCluster(tenantId, clusterId);
    if (current === undefined) throw new NotFoundError('cluster', clusterId);
    const next = mutate(current);
    if (!canTransition(current.status.phase, next.status.phase)) {
      throw new KilnError('conflict', `A cluster cannot go from ${current.status.phase} to ${next.status.phase}.`);
    }
    try {
      return await services.store.saveCluster(next, current.version);
    } catch (error) {
      if (!(error instanceof VersionConflictError) || attempt >= ATTEMPTS) throw error;
    }
  }
}

export async function updateOperation(
  services: KilnServices,
  tenantId: string,
  operationId: string,
  mutate: (operation: OperationRecord) => OperationRecord,
): Promise<OperationRecord> {
  for (let attempt = 1; ; attempt++) {
    const current = await services.store.getOperation(tenantId, operationId);
    if (current === undefined) throw new NotFoundError('operation', operationId);
    try {
      return await services.store.saveOperation(mutate(current), current.version);
    } catch (error) {
      if (!(error instanceof VersionConflictError) || attempt >= ATTEMPTS) throw error;
    }
  }
}

/** Sets a condition, keeping its transition time when its status did not change. */
export function withCondition(conditions: readonly Condition[], next: Omit<Condition, 'lastTransitionTime'>, now: string): Condition[] {
  const previous = conditions.find((condition) => condition.type === next.type);
  const lastTransitionTime = previous !== undefined && previous.status === next.status ? previous.lastTransitionTime : now;
  return [...conditions.filter((condition) => condition.type !== next.type), { ...next, lastTransitionTime }];
}
