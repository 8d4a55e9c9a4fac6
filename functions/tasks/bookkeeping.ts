import { awaitInfrastructureSlot as awaitSlot, releaseInfrastructureSlot as releaseSlot } from '#services';
import { bootstrapStep, markDeletedStep, markReadyStep, planStep, recordWorkflowFailureStep } from '#steps';
import { step } from './services.ts';

/**
 * The workflow steps that keep the books and hand out material without talking to a cluster: each its own Lambda
 * function (`functions/tasks/bookkeeping.<export>`), all with this module as their code (the same clients: DynamoDB,
 * KMS, SSM, Step Functions), so one bundle serves them all.
 */
export const plan = step(planStep);
export const bootstrap = step(bootstrapStep);
export const markReady = step(markReadyStep);
export const markDeleted = step(markDeletedStep);
export const recordFailure = step(recordWorkflowFailureStep);
/** The fair queue in front of the infrastructure runs: waiting for a slot (with the workflow's task token), and giving it back. */
export const awaitInfrastructureSlot = step((services, event) => awaitSlot(services, event));
export const releaseInfrastructureSlot = step((services, event) => releaseSlot(services, event));
