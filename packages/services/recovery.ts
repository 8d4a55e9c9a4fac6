import { workflowOf } from '#core';
import type { KilnServices } from './context.ts';
import { recordFailureStep } from './failures.ts';
import { workflowInputOf } from './clusters.ts';
import { dispatchInfrastructureSlots } from './infrastructure-slots.ts';

export interface RecoveryReport {
  checked: number;
  started: string[];
  failed: string[];
  /** Infrastructure slots handed out that were free with operations waiting (a grant that lost every race leaves one so). */
  slotsGranted: number;
}

/** Re-read: an execution may record its own outcome just before it ends. */
async function stillActive(services: KilnServices, tenantId: string, operationId: string): Promise<boolean> {
  const state = (await services.store.getOperation(tenantId, operationId))?.state;
  return state === 'pending' || state === 'running';
}

/**
 * Repairs operations whose execution is missing: the process died between
 * the DynamoDB write and StartExecution, or (locally) a restart lost the
 * in-memory executions. Starting under the operation's id is idempotent, and
 * every step skips work it already recorded. An execution that ended without
 * recording its outcome (stopped by hand) is recorded as failed. Last, free infrastructure slots go to waiting
 * operations, should every grant for them have lost its race.
 */
export async function recoverOperations(services: KilnServices, options: { graceMs?: number; now?: Date } = {}): Promise<RecoveryReport> {
  const graceMs = options.graceMs ?? 30_000;
  const now = options.now ?? new Date();
  const report: RecoveryReport = { checked: 0, started: [], failed: [], slotsGranted: 0 };
  for (const active of await services.store.listActiveOperations()) {
    if (now.getTime() - Date.parse(active.createdAt) < graceMs) continue;
    const operation = await services.store.getOperation(active.tenantId, active.operationId);
    if (operation === undefined) continue;
    const workflow = workflowOf(operation.type);
    report.checked++;
    const input = workflowInputOf(operation);
    const status = await services.workflows.status(workflow, operation.id);
    if (status === 'MISSING') {
      await services.workflows.start(workflow, input);
      report.started.push(operation.id);
    } else if (status !== 'RUNNING' && (await stillActive(services, operation.tenantId, operation.id))) {
      await recordFailureStep(services, { ...input, error: { Error: 'Kiln.ExecutionEnded', Cause: `The workflow execution ended as ${status} without recording a result.` } });
      report.failed.push(operation.id);
    }
  }
  report.slotsGranted = await dispatchInfrastructureSlots(services, now);
  if (report.started.length + report.failed.length + report.slotsGranted > 0) services.log.info('recovered operations', { ...report });
  return report;
}
