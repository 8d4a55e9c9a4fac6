import { recordFailureStep } from '#services';
import { bootstrapStep, markDeletedStep, markReadyStep, planStep } from '#steps';
import { services } from './services.ts';

/**
 * The workflow steps that keep the books and hand out material without talking to a cluster: each its own Lambda
 * function (`functions/tasks/bookkeeping.<export>`), all with this module as their code (the same clients: DynamoDB,
 * KMS, SSM), so one bundle serves them all.
 */
export const plan = (event: unknown) => planStep(services, event);
export const bootstrap = (event: unknown) => bootstrapStep(services, event);
export const markReady = (event: unknown) => markReadyStep(services, event);
export const markDeleted = (event: unknown) => markDeletedStep(services, event);
export const recordFailure = (event: unknown) => recordFailureStep(services, event);
