import { podSecurityDefaultsStep, rotateEncryptionKeyStep, waitForControlPlaneStep, waitForWorkersStep } from '#steps';
import { step } from './services.ts';

/**
 * The workflow steps that talk to a cluster's API server but install nothing: each its own Lambda function
 * (`functions/tasks/cluster-api.<export>`), all with this module as their code, so one bundle serves them all.
 */
export const waitForControlPlane = step(waitForControlPlaneStep);
export const waitForWorkers = step(waitForWorkersStep);
export const rotateEncryptionKey = step(rotateEncryptionKeyStep);
export const podSecurityDefaults = step(podSecurityDefaultsStep);
