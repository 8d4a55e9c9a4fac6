import { type ClusterEvent, type Condition, KilnError, NotFoundError, canTransition, operationEvent, phaseChange } from '#core';
import { type ClusterRecord, type OperationRecord, VersionConflictError } from '#store';
import type { KilnServices } from './context.ts';

const ATTEMPTS = 5;

/** Read, change, write with the version guard; retried when another writer got there first. */
async function readModifyWrite<T>(read: () => Promise<T>, write: (current: T) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write(await read());
    } catch (error) {
      if (!(error instanceof VersionConflictError) || attempt >= ATTEMPTS) throw error;
    }
  }
}

export function updateCluster(
  services: KilnServices,
  tenantId: string,
  clusterId: string,
  mutate: (cluster: ClusterRecord) => ClusterRecord,
  /** Events the change emits besides a phase change, written in the same transaction. */
  events: (before: ClusterRecord, after: ClusterRecord) => ClusterEvent[] = () => [],
): Promise<ClusterRecord> {
  return readModifyWrite(
    async () => (await services.store.getCluster(tenantId, clusterId)) ?? Promise.reject(new NotFoundError('cluster', clusterId)),
    (current) => {
      const next = mutate(current);
      if (!canTransition(current.status.phase, next.status.phase)) {
        throw new KilnError('conflict', `A cluster cannot go from ${current.status.phase} to ${next.status.phase}.`);
      }
      return services.store.saveCluster(next, current.version, new Date(), [
        ...phaseChange(current.id, current.status.phase, next.status.phase, next.status.reason),
        ...events(current, next),
      ]);
    },
  );
}

export function updateOperation(
  services: KilnServices,
  tenantId: string,
  operationId: string,
  mutate: (operation: OperationRecord) => OperationRecord,
): Promise<OperationRecord> {
  return readModifyWrite(
    async () => (await services.store.getOperation(tenantId, operationId)) ?? Promise.reject(new NotFoundError('operation', operationId)),
    (current) => {
      const next = mutate(current);
      // An operation that finishes says so, with the change.
      const finished = next.state !== current.state && (next.state === 'succeeded' || next.state === 'failed') ? [operationEvent(next, next.state === 'succeeded' ? 'operation.succeeded' : 'operation.failed')] : [];
      return services.store.saveOperation(next, current.version, new Date(), finished);
    },
  );
}

/** Sets a condition, keeping its transition time when its status did not change. */
export function withCondition(conditions: readonly Condition[], next: Omit<Condition, 'lastTransitionTime'>, now: string): Condition[] {
  const previous = conditions.find((condition) => condition.type === next.type);
  const lastTransitionTime = previous !== undefined && previous.status === next.status ? previous.lastTransitionTime : now;
  return [...conditions.filter((condition) => condition.type !== next.type), { ...next, lastTransitionTime }];
}
