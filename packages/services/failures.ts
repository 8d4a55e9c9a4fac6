import { z } from 'zod';
import { WorkflowInput, problemFor, workflowStepOrder } from '#core';
import { updateCluster, updateOperation, withCondition } from './mutations.ts';
import type { KilnServices } from './context.ts';

const FailureInput = WorkflowInput.extend({
  error: z.object({ Error: z.string().optional(), Cause: z.string().optional() }).optional(),
});

/** What the failed task said, from Lambda's `{errorType, errorMessage}` or ECS's stopped-task JSON. */
export function failureMessage(error: { Error?: string; Cause?: string } | undefined): string {
  const cause = error?.Cause;
  if (cause === undefined) return error?.Error ?? 'The workflow failed.';
  try {
    const parsed: unknown = JSON.parse(cause);
    if (typeof parsed === 'object' && parsed !== null) {
      const record = parsed as Record<string, unknown>;
      if (typeof record.errorMessage === 'string') return record.errorMessage;
      // ECS: the container's own reason says more than the task's generic StoppedReason.
      const containers = Array.isArray(record.Containers) ? (record.Containers as { Reason?: unknown }[]) : [];
      const containerReason = containers.find((container) => typeof container.Reason === 'string')?.Reason;
      if (typeof containerReason === 'string') return containerReason;
      if (typeof record.StoppedReason === 'string') return record.StoppedReason;
    }
  } catch {
    // Not JSON: the cause is the message itself.
  }
  return cause.slice(0, 500);
}

/**
 * The Catch target of every workflow: records the problem on the operation,
 * marks the running step failed, and leaves the cluster Failed and deletable.
 */
export async function recordFailureStep(services: KilnServices, rawInput: unknown): Promise<void> {
  const { tenantId, clusterId, operationId, error } = FailureInput.parse(rawInput);
  const now = new Date().toISOString();
  const message = failureMessage(error);
  let failedStep = 'workflow';
  await updateOperation(services, tenantId, operationId, (operation) => {
    const steps = { ...operation.steps };
    // Steps run in order: the failure belongs to the running step, or to the
    // first pending one when the task failed before it could record its start.
    const order = workflowStepOrder(operation.type);
    const culprit =
      order.find((name) => steps[name]?.state === 'running') ?? order.find((name) => steps[name]?.state === 'pending');
    const step = culprit === undefined ? undefined : steps[culprit];
    if (culprit !== undefined && step !== undefined) {
      steps[culprit] = { ...step, state: 'failed', startedAt: step.startedAt ?? now, finishedAt: now };
      failedStep = culprit;
    }
    return {
      ...operation,
      state: 'failed',
      steps,
      finishedAt: now,
      error: problemFor('provisioning_failed', `Step ${failedStep} failed: ${message}`, [], `/v1/operations/${operationId}`),
    };
  });
  await updateCluster(services, tenantId, clusterId, (cluster) => {
    const { activeOperationId: _finished, ...status } = cluster.status;
    return {
      ...cluster,
      status: {
        ...status,
        phase: 'Failed',
        reason: `Operation ${operationId} failed at step ${failedStep}: ${message}`,
        conditions: withCondition(status.conditions, { type: 'Ready', status: 'False', reason: 'OperationFailed', message: `Step ${failedStep} failed.` }, now),
      },
    };
  });
  services.log.warn('operation failed', { tenantId, clusterId, operationId, step: failedStep });
}
