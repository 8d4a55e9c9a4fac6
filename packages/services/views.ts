import { type Cluster, type Operation, workflowStepOrder } from '#core';
import { ROTATION_PHASES, type RotationPhase } from '#encryption';
import type { ClusterRecord, OperationRecord } from '#store';

/** The phase of a rotation in progress, as the stored state machine records it. */
function rotationPhaseOf(rotation: Record<string, unknown> | undefined): { phase?: RotationPhase } {
  const phase = ROTATION_PHASES.find((candidate) => candidate === rotation?.phase);
  return phase === undefined ? {} : { phase };
}

/** The API's view of a stored cluster: no sealed material, no write-only fields. */
export function clusterView(record: ClusterRecord): Cluster {
  // Write-only: a user-provided key is sealed on arrival and never shown again.
  const atRest = { ...record.spec.encryption.atRest };
  delete atRest.key;
  return {
    ...record.spec,
    encryption: { ...record.spec.encryption, atRest },
    id: record.id,
    status: {
      ...record.status,
      ...(record.encryption === undefined
        ? {}
        : {
            encryption: {
              provider: record.spec.encryption.atRest.provider,
              ...(record.clusterKeyArn === undefined ? {} : { kmsKeyArn: record.clusterKeyArn }),
              activeKeyId: record.encryption.activeKeyId,
              keys: record.encryption.keys,
              rotation: {
                ...rotationPhaseOf(record.encryption.rotation),
                ...(record.encryption.lastInitiatedAt === undefined ? {} : { lastInitiatedAt: record.encryption.lastInitiatedAt }),
                ...(record.encryption.lastCompletedAt === undefined ? {} : { lastCompletedAt: record.encryption.lastCompletedAt }),
              },
            },
          }),
    },
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  };
}

export function operationView(record: OperationRecord): Operation {
  const names = workflowStepOrder(record.type);
  return {
    id: record.id,
    type: record.type,
    clusterId: record.clusterId,
    ...(record.target === undefined ? {} : { target: record.target }),
    state: record.state,
    steps: names.flatMap((name) => {
      const step = record.steps[name];
      return step === undefined ? [] : [{ name, ...step }];
    }),
    ...(record.error === undefined ? {} : { error: record.error }),
    ...(record.requestId === undefined ? {} : { requestId: record.requestId }),
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    ...(record.finishedAt === undefined ? {} : { finishedAt: record.finishedAt }),
  };
}
