import { rotateEncryptionKeyStep, waitForControlPlaneStep, waitForWorkersStep } from '#steps';
import { services } from './services.ts';

/**
 * The workflow steps that talk to a cluster's API server but install nothing: each its own Lambda function
 * (`functions/tasks/cluster-api.<export>`), all with this module as their code, so one bundle serves them all.
 */
export const waitForControlPlane = (event: unknown) => waitForControlPlaneStep(services, event);
export const waitForWorkers = (event: unknown) => waitForWorkersStep(services, event);
export const rotateEncryptionKey = (event: unknown) => rotateEncryptionKeyStep(services, event);
