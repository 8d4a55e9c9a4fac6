import { recordFailureStep } from '#services';
import { bootstrapStep, markDeletedStep, markReadyStep, planStep } from '#steps';
import { step } from './services.ts';

/**
 * The workflow steps that keep the books and hand out material without talking to a cluster: each its own Lambda
 * function (`functions/tasks/bookkeeping.<export>`), all with this module as their code (the same clients: DynamoDB,
 * KMS, SSM), so one bundle serves them all.
 */
export const plan = step(planStep);
export const bootstrap = step(bootstrapStep);
export const markReady = step(markReadyStep);
export const markDeleted = step(markDeletedStep);
export const recordFailure = step(recordFailureStep);
