import { z } from 'zod';
import { type FailureCause, type OperationType, type Problem, WorkflowInput, problemFor, tenantFailureDetail, workflowStepOrder } from '#core';
import { updateCluster, updateOperation, withCondition } from './mutations.ts';
import type { KilnServices } from './context.ts';

export const FailureInput = WorkflowInput.extend({
  error: z.object({ Error: z.string().optional(), Cause: z.string().optional() }).optional(),
});
export type FailureInput = z.infer<typeof FailureInput>;

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

/** Kiln's own step errors (StepError: Kiln.Transient, Kiln.Permanent; the recovery's Kiln.ExecutionEnded) carry messages written for tenants. */
const KILN_ERROR = /^Kiln\./;

/** Whether what the failed task said is Kiln's own word, or a dependency's, which only Kiln's logs may carry. */
export function failureCause(error: { Error?: string; Cause?: string } | undefined): FailureCause {
  let errorType = error?.Error;
  try {
    const parsed: unknown = JSON.parse(error?.Cause ?? '');
    if (typeof parsed === 'object' && parsed !== null && typeof (parsed as { errorType?: unknown }).errorType === 'string') errorType = (parsed as { errorType: string }).errorType;
  } catch {
    // Not a Lambda function error: Error names it.
  }
  return errorType !== undefined && KILN_ERROR.test(errorType) ? { kind: 'kiln', message: failureMessage(error) } : { kind: 'dependency' };
}

/**
 * An operation's error as the tenant reads it (see tenantFailureDetail), under a reference: the request that started
 * the operation, or the operation itself when a schedule did. Kiln's log line with the raw error (logFailure) carries
 * the same reference.
 */
export function operationFailure(input: WorkflowInput, operationType: OperationType, step: string, cause: FailureCause): Problem {
  const requestId = input.requestId ?? input.operationId;
  const detail = tenantFailureDetail({ operationType, step, cause, reference: requestId });
  return { ...problemFor('provisioning_failed', detail, [], `/v1/operations/${input.operationId}`), requestId };
}

export function logFailure(services: Pick<KilnServices, 'log'>, input: FailureInput, step: string): void {
  const { tenantId, clusterId, operationId } = input;
  const error = { name: input.error?.Error ?? 'unknown', message: failureMessage(input.error) };
  services.log.error('operation failed', { tenantId, clusterId, operationId, requestId: input.requestId ?? operationId, step, error });
}

/**
 * The Catch target of every workflow: records the problem on the operation,
 * marks the running step failed, and leaves the cluster Failed and deletable.
 */
export async function recordFailureStep(services: KilnServices, rawInput: unknown): Promise<void> {
  const input = FailureInput.parse(rawInput);
  const { tenantId, clusterId, operationId } = input;
  const now = new Date().toISOString();
  let failedStep = 'workflow';
  let detail = '';
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
    // A step that failed in a container (the infrastructure runner) reaches the Catch as an exit code; what it said is on its record.
    const cause = failureCause(input.error);
    const recordedError = step?.error;
    const error = operationFailure(input, operation.type, failedStep, cause.kind === 'dependency' && recordedError !== undefined ? { kind: 'kiln', message: recordedError } : cause);
    detail = error.detail;
    return { ...operation, state: 'failed', steps, finishedAt: now, error };
  });
  logFailure(services, input, failedStep);
  await updateCluster(services, tenantId, clusterId, (cluster) => {
    const { activeOperationId: _finished, ...status } = cluster.status;
    return {
      ...cluster,
      status: {
        ...status,
        phase: 'Failed',
        reason: `Operation ${operationId} failed. ${detail}`,
        conditions: withCondition(status.conditions, { type: 'Ready', status: 'False', reason: 'OperationFailed', message: `Step ${failedStep} failed.` }, now),
      },
    };
  });
}
