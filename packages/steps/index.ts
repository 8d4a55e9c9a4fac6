// The bodies of the workflows' Task states, one file per step as functions/tasks names them. Only
// infrastructure.ts loads the Pulumi program; it runs in the Fargate task, never in a Lambda.
export { addonsStep } from './addons.ts';
export { bootstrapStep } from './bootstrap.ts';
export { clusterApi, clusterObserver, CREDENTIAL_REUSE_MINUTES, KILN_BOOTSTRAP_USER, unsealClusterPki } from './cluster-api.ts';
export type { ClusterAws, ClusterLocation, StepServices } from './context.ts';
export { destroyStep, infrastructureStep, runInfrastructureContainer } from './infrastructure.ts';
export { bootstrapTokenIdsOf, withdrawJoinMaterial } from './join-material.ts';
export { controlPlaneTargets, machineGroupsOf } from './machine-targets.ts';
export type { GroupMember, GroupMembers, MachineGroupNames } from './machine-groups.ts';
export { markDeletedStep } from './mark-deleted.ts';
export { markReadyStep } from './mark-ready.ts';
export { networkStep } from './network.ts';
export { planStep, type ProvisionPlan } from './plan.ts';
export { podSecurityDefaultsStep } from './pod-security-defaults.ts';
export { recordWorkflowFailureStep } from './record-failure.ts';
export { MAX_UNHEALTHY_RESTARTS, rotateEncryptionKeyStep } from './rotate-encryption-key.ts';
export { ensureSshKey } from './ssh-key.ts';
export { runStep, toStepError, type StepContext, type StepResult } from './step-runner.ts';
export { verifyStep } from './verify.ts';
export { waitForControlPlaneStep, waitForWorkersStep } from './wait-for-nodes.ts';
