import { z } from 'zod';
import { DEFAULT_INFRASTRUCTURE_CONCURRENCY } from '#core';
import type { SlotWaiter } from '#store';
import type { KilnServices } from './context.ts';

/**
 * How long a slot stays held when its workflow never gives it back (stopped from outside): longer than the
 * infrastructure state can run (its capacity retries, about five hours, and three runs of up to two hours).
 */
const SLOT_HOLD_MS = 12 * 60 * 60 * 1000;

/**
 * How long one dispatch may go on granting: far inside the slot steps' Lambda timeout (5 minutes) and their states'
 * TimeoutSeconds. Under a burst every step dispatches at once and each grant contends for the same items; without
 * a bound, the 1000-order burst had a release step dispatch until its state timed out, failing a Ready-bound cluster.
 */
export const DISPATCH_BUDGET_MS = 30_000;

const SlotRequest = z.object({ tenantId: z.string().min(1), operationId: z.string().min(1), taskToken: z.string().min(1) });
const SlotRelease = z.object({ tenantId: z.string().min(1), operationId: z.string().min(1) });

/** The KMS encryption context of a waiter's task token: it unseals for that operation's slot and nothing else. */
const tokenContext = (waiter: { tenantId: string; operationId: string }) => ({ tenantId: waiter.tenantId, operationId: waiter.operationId, purpose: 'infrastructure-slot-task-token' });

/** The queue's entry for a waiting workflow: its task token sealed, so the table never holds it in plaintext. */
export async function slotWaiter(services: KilnServices, request: { tenantId: string; operationId: string; taskToken: string }): Promise<SlotWaiter> {
  const sealedTaskToken = await services.sealer.seal(Buffer.from(request.taskToken, 'utf8'), tokenContext(request));
  return { tenantId: request.tenantId, operationId: request.operationId, sealedTaskToken };
}

/**
 * The workflow's AwaitInfrastructureSlot step (a `.waitForTaskToken` task): queues the operation for an
 * infrastructure run and hands out whatever slots are free. The workflow goes on when its token is sent.
 */
export async function awaitInfrastructureSlot(services: KilnServices, event: unknown, now = new Date()): Promise<void> {
  const request = SlotRequest.parse(event);
  if (!(await services.store.infrastructureSlots.wait(await slotWaiter(services, request), now))) {
    // It holds one already: a new execution of the operation (recovery restarted one whose execution was lost) goes on with it.
    await services.workflows.completeTask(request.taskToken, { granted: true });
    return;
  }
  await dispatchOnTheWay(services, now);
}

/**
 * The workflow's ReleaseInfrastructureSlot steps (after the run, and on the way to recording a failure): gives the
 * slot back, or leaves the queue when the workflow stopped waiting before it got one.
 */
export async function releaseInfrastructureSlot(services: KilnServices, event: unknown, now = new Date()): Promise<void> {
  const { tenantId, operationId } = SlotRelease.parse(event);
  await services.store.infrastructureSlots.withdraw(tenantId, operationId);
  await services.store.infrastructureSlots.release(operationId);
  await dispatchOnTheWay(services, now);
}

/**
 * The dispatch a step does for the queue on its way: it serves other workflows, so it never fails or holds up the
 * step's own (its operation is queued or released already, and recovery's pass dispatches what it left).
 */
async function dispatchOnTheWay(services: KilnServices, now: Date): Promise<void> {
  try {
    await dispatchInfrastructureSlots(services, now);
  } catch (error) {
    services.log.warn('infrastructure slots not dispatched; the next release or recovery pass will', { error: error instanceof Error ? error.name : String(error) });
  }
}

/**
 * Grants free slots in fair order until none is free or nobody waits, sending each granted workflow its token, at
 * most `limit` grants and `budgetMs` of time in one call: on a busy queue slots keep coming free and dispatchers
 * contend for them, and each release dispatches for its own (one call must not go on granting for everyone's, nor
 * outlive its Lambda function or its state's timeout). A grant whose workflow no longer waits (stopped, or timed out)
 * is given back and goes to the next; one whose token could not be unsealed or sent is given back and its waiter
 * queued again (the error is thrown on). Returns how many workflows went on.
 */
export async function dispatchInfrastructureSlots(services: KilnServices, now = new Date(), budgetMs = DISPATCH_BUDGET_MS): Promise<number> {
  const slots = services.store.infrastructureSlots;
  const limit = services.infrastructureConcurrency ?? DEFAULT_INFRASTRUCTURE_CONCURRENCY;
  const deadline = Date.now() + budgetMs;
  let granted = 0;
  for (let tries = 0; tries < limit && Date.now() < deadline; tries++) {
    const next = await slots.grantNext(limit, now, SLOT_HOLD_MS, deadline);
    if (next === undefined) break;
    let taken: boolean;
    try {
      const taskToken = Buffer.from(await services.sealer.unseal(next.sealedTaskToken, tokenContext(next))).toString('utf8');
      taken = await services.workflows.completeTask(taskToken, { granted: true });
    } catch (error) {
      // Its workflow still waits (KMS or Step Functions failed): back into the queue (its place within its tenant is its operation id's).
      await slots.release(next.operationId, next.sealedTaskToken);
      await slots.wait(next, now);
      throw error;
    }
    if (taken) {
      granted += 1;
      services.log.info('infrastructure slot granted', { tenantId: next.tenantId, operationId: next.operationId });
    } else {
      await slots.release(next.operationId, next.sealedTaskToken);
    }
  }
  return granted;
}
