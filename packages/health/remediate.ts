import { listNodes } from '#addons';
import { type MachineCommands, type MachineSecretStore, instanceIdOf } from '#bootstrap';
import { type ClusterSpec, type RemediationTarget, StepError, WorkflowInput, clusterEvent } from '#core';
import { FailureInput, failureCause, launch, logFailure, newOperation, operationFailure, updateCluster, updateOperation } from '#services';
import { type StepResult, clusterApi, runStep, withdrawJoinMaterial } from '#steps';
import type { ClusterRecord, OperationRecord } from '#store';
import type { MachineHealth } from './evaluate.ts';
import type { MachineFleet } from './fleet.ts';
import type { HealthPollServices } from './services.ts';

/**
 * What the remediation steps need besides the poller's services: the
 * cluster's machine secrets and Run Command (fresh join material, etcd
 * membership), and how often to look again.
 */
export interface RemediationServices extends HealthPollServices {
  inCluster(cluster: { id: string; spec: Pick<ClusterSpec, 'region' | 'account'> }): { fleet: MachineFleet; machineSecrets: MachineSecretStore; machineCommands: MachineCommands };
  pollSeconds: number;
}

/** The machine a remediate-node operation is about; every remediation step needs it. */
export function targetOf(operation: OperationRecord, step: string): RemediationTarget {
  if (operation.target === undefined) throw new StepError(step, `Operation ${operation.id} names no machine.`, false);
  return operation.target;
}

/**
 * Starts a remediate-node operation for an unhealthy machine, unless another
 * change holds the cluster: the operation is written with the cluster's list
 * of remediations in flight (one transaction, version-guarded), then its
 * workflow starts under the operation's id.
 */
export async function startRemediation(services: HealthPollServices, cluster: ClusterRecord, machine: MachineHealth, now: Date): Promise<OperationRecord | undefined> {
  if (cluster.status.activeOperationId !== undefined || cluster.status.phase !== 'Ready' || machine.instanceId === undefined || machine.verdict.state !== 'unhealthy') return undefined;
  const operation: OperationRecord = {
    ...newOperation(cluster.tenantId, cluster.id, 'remediate-node', now.toISOString()),
    target: { instanceId: machine.instanceId, ...(machine.nodeName === undefined ? {} : { nodeName: machine.nodeName }), group: machine.group, reason: machine.verdict.reason },
  };
  const next: ClusterRecord = { ...cluster, status: { ...cluster.status, remediations: [...(cluster.status.remediations ?? []), operation.id] } };
  const outcome = await services.store.beginOperation(next, cluster.version, operation);
  if (outcome.kind !== 'written') return undefined;
  await launch(services, 'remediate-node', operation);
  services.log.info('remediation started', { tenantId: cluster.tenantId, clusterId: cluster.id, operationId: operation.id, instanceId: machine.instanceId });
  return operation;
}

/** First the gentle fix: reboot the machine through EC2, unless the order says to replace at once. */
export async function rebootStep(services: RemediationServices, input: unknown): Promise<StepResult<Record<string, unknown>>> {
  return runStep<Record<string, unknown>>(services, input, 'reboot', async ({ cluster, operation }) => {
    const target = targetOf(operation, 'reboot');
    if (!cluster.spec.nodeHealth.rebootBeforeReplace) return { done: true, outputs: { rebooted: false, skipped: 'rebootBeforeReplace is off.' } };
    // Its bootstrap gave up at nodeStartupTimeoutMinutes from first boot, when it became NoNode: a reboot does not make it join.
    if (target.reason === 'NoNode') return { done: true, outputs: { rebooted: false, skipped: 'The machine never became a node.' } };
    if (target.reason === 'MachineGone') return { done: true, outputs: { rebooted: false, skipped: 'The machine is gone.' } };
    const rebootedAt = new Date().toISOString();
    try {
      await services.inCluster(cluster).fleet.reboot(target.instanceId);
    } catch (error) {
      // EC2 refuses to reboot a machine that is stopped or gone (a client error): it is for replacing, not rebooting.
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === undefined || status >= 500) throw error;
      // The step's outputs are the tenant's to read: EC2's answer by name; its message (Kiln's ARNs) goes to the log.
      const name = error instanceof Error ? error.name : 'Error';
      services.log.warn('EC2 did not reboot the machine', { tenantId: cluster.tenantId, clusterId: cluster.id, operationId: operation.id, error: { name, message: error instanceof Error ? error.message : String(error) } });
      return { done: true, outputs: { rebooted: false, skipped: `EC2 did not reboot it (${name}).` } };
    }
    await services.store.appendEvents(cluster.tenantId, [clusterEvent('node.rebooted', cluster.id, { ...target, operationId: operation.id })]);
    return { done: true, outputs: { rebooted: true, rebootedAt } };
  });
}

interface RecoverResult extends Record<string, unknown> {
  /** The wait is over: the node came back, or the timeout passed (or there was nothing to wait for). */
  ready: boolean;
  recovered: boolean;
  retryAfterSeconds: number;
}

/** Waits for the rebooted machine's node to be Ready again, up to the cluster's unhealthy timeout after the reboot. */
export async function recoverStep(services: RemediationServices, input: unknown): Promise<RecoverResult> {
  const result = await runStep<Record<string, unknown>>(
    services,
    input,
    'recover',
    async (context) => {
      const { cluster, operation } = context;
      const target = targetOf(operation, 'recover');
      const reboot = context.outputsOf('reboot') as { rebooted?: boolean; rebootedAt?: string };
      if (reboot.rebooted !== true) return { done: true, outputs: { recovered: false } };
      const node = (await listNodes(await clusterApi(services, cluster, 'recover'))).find((candidate) => instanceIdOf(candidate.providerID) === target.instanceId);
      if (node?.ready === true) return { done: true, outputs: { recovered: true, nodeName: node.name } };
      const waitedMinutes = (Date.now() - Date.parse(reboot.rebootedAt ?? new Date().toISOString())) / 60_000;
      if (waitedMinutes >= cluster.spec.nodeHealth.unhealthyTimeoutMinutes) return { done: true, outputs: { recovered: false } };
      return { done: false, progress: { waitedMinutes: Math.floor(waitedMinutes) } };
    },
    { polling: true },
  );
  return { ready: result.done, recovered: result.done && result.outputs.recovered === true, retryAfterSeconds: services.pollSeconds };
}

/** Removes the operation from the cluster's remediations in flight. */
async function release(services: HealthPollServices, tenantId: string, clusterId: string, operationId: string): Promise<void> {
  await updateCluster(services, tenantId, clusterId, (cluster) => {
    const remaining = (cluster.status.remediations ?? []).filter((id) => id !== operationId);
    const { remediations: _previous, ...status } = cluster.status;
    return { ...cluster, status: remaining.length === 0 ? status : { ...status, remediations: remaining } };
  });
}

/**
 * Closes the remediation: succeeded when the node came back after its reboot
 * (`node.recovered`) or was replaced (the retire step said so), failed
 * otherwise, and the cluster free for the next change either way.
 */
export async function finishRemediationStep(services: RemediationServices, rawInput: unknown): Promise<void> {
  const input = WorkflowInput.parse(rawInput);
  const { tenantId, clusterId, operationId } = input;
  const now = new Date().toISOString();
  const operation = await updateOperation(services, tenantId, operationId, (current) => {
    const recovered = (current.steps.recover?.outputs as { recovered?: boolean } | undefined)?.recovered === true;
    const retired = current.steps.retire?.state === 'succeeded';
    return recovered || retired
      ? { ...current, state: 'succeeded', finishedAt: current.finishedAt ?? now }
      : {
          ...current,
          state: 'failed',
          finishedAt: current.finishedAt ?? now,
          error: operationFailure(input, 'remediate-node', 'finish', { kind: 'kiln', message: `The machine ${current.target?.instanceId ?? ''} was neither recovered nor replaced` }),
        };
  });
  if (operation.state === 'succeeded' && operation.steps.retire === undefined && operation.target !== undefined) {
    await services.store.appendEvents(tenantId, [clusterEvent('node.recovered', clusterId, { ...operation.target, operationId })]);
  }
  // A replacement that joined used its token; one that did not join will not, once the remediation is over.
  await withdrawJoinMaterial(services, input, operation.state === 'succeeded');
  await release(services, tenantId, clusterId, operationId);
}

/** The workflow's Catch: the operation fails with the error; the cluster keeps its phase and is freed. */
export async function recordRemediationFailureStep(services: RemediationServices, rawInput: unknown): Promise<void> {
  const input = FailureInput.parse(rawInput);
  const { tenantId, clusterId, operationId } = input;
  const now = new Date().toISOString();
  let failedStep = 'workflow';
  await updateOperation(services, tenantId, operationId, (current) => {
    // The step that was running when the workflow caught the error is the one that failed.
    failedStep = Object.entries(current.steps).find(([, step]) => step.state === 'running')?.[0] ?? 'workflow';
    return {
      ...current,
      state: 'failed',
      steps: Object.fromEntries(
        Object.entries(current.steps).map(([name, step]) => [name, step.state === 'running' ? { ...step, state: 'failed' as const, finishedAt: now } : step]),
      ),
      finishedAt: now,
      error: operationFailure(input, 'remediate-node', failedStep, failureCause(input.error)),
    };
  });
  logFailure(services, input, failedStep);
  await withdrawJoinMaterial(services, input, false);
  await release(services, tenantId, clusterId, operationId);
}
