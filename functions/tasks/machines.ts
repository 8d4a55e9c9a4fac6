import {
  awaitNodesStep,
  awaitReplacementStep,
  drainNodesStep,
  drainStep,
  finishRemediationStep,
  joinTokenStep,
  rebootStep,
  recordRemediationFailureStep,
  recoverStep,
  removeMachinesStep,
  replaceStep,
  retireNodeStep,
  rollControlPlaneStep,
  rollMachinesStep,
} from '#health';
import { loadConfig } from '../wiring/config.ts';
import { createRemediationServices } from '../wiring/health-services.ts';

/**
 * The steps that work on a cluster's machines: remediation and node pool changes. Each is its own Lambda function
 * (`functions/tasks/machines.<export>`), all with this module as their code: they need the same clients (Auto
 * Scaling and EC2, SSM, the cluster's API), so one bundle serves them all.
 */

/** Built once per Lambda container (module scope), shared by every invocation. */
const services = createRemediationServices(loadConfig());

export const reboot = (event: unknown) => rebootStep(services, event);
export const recover = (event: unknown) => recoverStep(services, event);
export const drain = (event: unknown) => drainStep(services, event);
export const replace = (event: unknown) => replaceStep(services, event);
export const awaitReplacement = (event: unknown) => awaitReplacementStep(services, event);
export const retire = (event: unknown) => retireNodeStep(services, event);
export const finishRemediation = (event: unknown) => finishRemediationStep(services, event);
export const recordRemediationFailure = (event: unknown) => recordRemediationFailureStep(services, event);
export const drainNodes = (event: unknown) => drainNodesStep(services, event);
export const removeMachines = (event: unknown) => removeMachinesStep(services, event);
export const joinToken = (event: unknown) => joinTokenStep(services, event);
export const awaitNodes = (event: unknown) => awaitNodesStep(services, event);
export const rollMachines = (event: unknown) => rollMachinesStep(services, event);
export const rollControlPlane = (event: unknown) => rollControlPlaneStep(services, event);
