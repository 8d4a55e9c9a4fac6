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
  type RemediationServices,
} from '#health';
import { loadConfig } from '../wiring/config.ts';
import { createRemediationServices } from '../wiring/health-services.ts';
import { createObservability, stepHandler } from '../wiring/observability.ts';

/**
 * The steps that work on a cluster's machines: remediation and node pool changes. Each is its own Lambda function
 * (`functions/tasks/machines.<export>`), all with this module as their code: they need the same clients (Auto
 * Scaling and EC2, SSM, the cluster's API), so one bundle serves them all.
 */

/** Built once per Lambda container (module scope), shared by every invocation. */
const config = loadConfig();
const observability = createObservability(config);
const services = createRemediationServices(config, observability);
/** A step's handler: its log lines carry the invocation's context and the operation's ids (the request id among them). */
const step = <R>(run: (services: RemediationServices, event: unknown) => Promise<R>) => stepHandler(services, observability, run);

export const reboot = step(rebootStep);
export const recover = step(recoverStep);
export const drain = step(drainStep);
export const replace = step(replaceStep);
export const awaitReplacement = step(awaitReplacementStep);
export const retire = step(retireNodeStep);
export const finishRemediation = step(finishRemediationStep);
export const recordRemediationFailure = step(recordRemediationFailureStep);
export const drainNodes = step(drainNodesStep);
export const removeMachines = step(removeMachinesStep);
export const joinToken = step(joinTokenStep);
export const awaitNodes = step(awaitNodesStep);
export const rollMachines = step(rollMachinesStep);
export const rollControlPlane = step(rollControlPlaneStep);
