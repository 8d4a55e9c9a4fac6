import { workflowOf } from '#core';
import type { ActiveOperation } from '#store';
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

/**
 * Active operations one pass checks (each costs a read and a DescribeExecution, whose account quota refills at 15 a
 * second): passes take turns through the list from where the last stopped, so with a thousand orders in flight every
 * one is still looked at every few passes, not only the oldest hundred.
 */
export const RECOVERY_PAGE = 100;

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
 *
 * One pass checks a page of the active operations after where the last pass stopped (the store keeps the cursor);
 * `sweep` checks them all and leaves the cursor alone, as after a local restart, where every execution was lost.
 */
export async function recoverOperations(services: KilnServices, options: { graceMs?: number; now?: Date; sweep?: boolean; pageSize?: number } = {}): Promise<RecoveryReport> {
  const graceMs = options.graceMs ?? 30_000;
  const now = options.now ?? new Date();
  const limit = options.pageSize ?? RECOVERY_PAGE;
  const report: RecoveryReport = { checked: 0, started: [], failed: [], slotsGranted: 0 };
  const cursor = options.sweep === true ? undefined : await services.store.recoveryCursor();
  let after = cursor;
  for (;;) {
    let page = await services.store.listActiveOperations({ limit, after });
    // Past the newest: the operations after the cursor finished meanwhile, so this pass starts again at the oldest.
    if (page.items.length === 0 && after !== undefined) page = await services.store.listActiveOperations({ limit });
    for (const active of page.items) await recoverOne(services, active, now, graceMs, report);
    after = page.next;
    if (options.sweep !== true) {
      // Written only when it moved: with fewer active operations than a page, most passes leave it as it was.
      if (after !== cursor) await services.store.setRecoveryCursor(after);
      break;
    }
    if (after === undefined) break;
  }
  report.slotsGranted = await dispatchInfrastructureSlots(services, now);
  if (report.started.length + report.failed.length + report.slotsGranted > 0) services.log.info('recovered operations', { ...report });
  return report;
}

async function recoverOne(services: KilnServices, active: ActiveOperation, now: Date, graceMs: number, report: RecoveryReport): Promise<void> {
  if (now.getTime() - Date.parse(active.createdAt) < graceMs) return;
  const operation = await services.store.getOperation(active.tenantId, active.operationId);
  if (operation === undefined) return;
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
