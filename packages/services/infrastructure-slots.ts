import { z } from 'zod';
import { DEFAULT_INFRASTRUCTURE_CONCURRENCY } from '#core';
import type { KilnServices } from './context.ts';

/**
 * How long a slot stays held when its workflow never gives it back (stopped from outside): longer than the
 * infrastructure state can run (its capacity retries, about five hours, and three runs of up to two hours).
 */
const SLOT_HOLD_MS = 12 * 60 * 60 * 1000;

const SlotRequest = z.object({ tenantId: z.string().min(1), operationId: z.string().min(1), taskToken: z.string().min(1) });
const SlotRelease = z.object({ tenantId: z.string().min(1), operationId: z.string().min(1) });

/**
 * The workflow's AwaitInfrastructureSlot step (a `.waitForTaskToken` task): queues the operation for an
 * infrastructure run and hands out whatever slots are free. The workflow goes on when its token is sent.
 */
export async function awaitInfrastructureSlot(services: KilnServices, event: unknown, now = new Date()): Promise<void> {
  const request = SlotRequest.parse(event);
  if (!(await services.store.infrastructureSlots.wait(request, now))) {
    // It holds one already: a new execution of the operation (recovery restarted one whose execution was lost) goes on with it.
    await services.workflows.completeTask(request.taskToken, { granted: true });
    return;
  }
  await dispatchInfrastructureSlots(services, now);
}

/**
 * The workflow's ReleaseInfrastructureSlot steps (after the run, and on the way to recording a failure): gives the
 * slot back, or leaves the queue when the workflow stopped waiting before it got one.
 */
export async function releaseInfrastructureSlot(services: KilnServices, event: unknown, now = new Date()): Promise<void> {
  const { tenantId, operationId } = SlotRelease.parse(event);
  await services.store.infrastructureSlots.withdraw(tenantId, operationId);
  await services.store.infrastructureSlots.release(operationId);
  await dispatchInfrastructureSlots(services, now);
}

/**
 * Grants free slots in fair order until none is free or nobody waits, sending each granted workflow its token, at
 * most `limit` grants in one call: on a busy queue slots keep coming free, and each release dispatches for its own
 * (one call must not go on granting for everyone's). A grant whose workflow no longer waits (stopped, or timed out)
 * is given back and goes to the next. Returns how many workflows went on.
 */
export async function dispatchInfrastructureSlots(services: KilnServices, now = new Date()): Promise<number> {
  const slots = services.store.infrastructureSlots;
  const limit = services.infrastructureConcurrency ?? DEFAULT_INFRASTRUCTURE_CONCURRENCY;
  let granted = 0;
  for (let tries = 0; tries < limit; tries++) {
    const next = await slots.grantNext(limit, now, SLOT_HOLD_MS);
    if (next === undefined) break;
    if (await services.workflows.completeTask(next.taskToken, { granted: true })) {
      granted += 1;
      services.log.info('infrastructure slot granted', { tenantId: next.tenantId, operationId: next.operationId });
    } else {
      await slots.release(next.operationId, next.taskToken);
    }
  }
  return granted;
}
