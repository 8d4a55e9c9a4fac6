export { AwsMachineFleet, type MachineFleet, type MachineGroups } from './fleet.ts';
export {
  REMEDIATION_BUDGET_PER_DAY,
  decide,
  groupKey,
  verdicts,
  type HealthDecision,
  type HealthInput,
  type HealthVerdict,
  type HoldReason,
  type MachineGroup,
  type MachineHealth,
  type ObservedMachine,
  type ObservedNode,
  type RemediationRecord,
  type UnhealthyReason,
} from './evaluate.ts';
export { pollCluster, pollNodeHealth, type HealthPollReport } from './poll.ts';
export type { HealthPollServices } from './services.ts';
export {
  finishRemediationStep,
  rebootStep,
  recordRemediationFailureStep,
  recoverStep,
  startRemediation,
  type RemediationServices,
} from './remediate.ts';
export { DRAIN_TIMEOUT_MINUTES, awaitReplacementStep, drainStep, replaceStep, replacementTokenTtlMs, retireNodeStep, type PollResult } from './replace.ts';
export { awaitNodesStep, drainNodesStep, joinTokenStep, removeMachinesStep, rollMachinesStep, type LeavingMachine } from './node-pools.ts';
export { rollControlPlaneStep, type ControlPlaneRollReason, type RollingControlPlaneMachine } from './control-plane.ts';
