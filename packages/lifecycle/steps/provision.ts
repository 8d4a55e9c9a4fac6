import { applyObjects, baselineObjects, kubeConfigFor, listNodes, readObject } from '#addons';
import { renderUserData } from '#bootstrap';
import { randomBytes } from 'node:crypto';
import { StepError, WorkflowInput, assertOrderRules } from '#core';
import type { InfrastructureDriver } from '#infra';
import { InfrastructureOutputs } from '#infra';
import { updateCluster, updateOperation, withCondition } from '../mutations.ts';
import { ensureSshKey } from '../ssh-keys.ts';
import type { KilnServices } from '../services.ts';
import { type StepContext, type StepResult, runStep } from './step-runner.ts';

/** What the plan step decides, and every later step reads. */
export interface ProvisionPlan extends Record<string, unknown> {
  availabilityZones: string[];
  controlPlaneReplicas: number;
  workerNodes: number;
  pools: { name: string; size: number; instanceType: string }[];
}

function planOf(context: StepContext): ProvisionPlan {
  const plan = context.outputsOf('plan') as Partial<ProvisionPlan>;
  if (plan.availabilityZones === undefined || plan.pools === undefined) {
    throw new StepError('plan', 'The plan step has not recorded its outputs.', false);
  }
  return plan as ProvisionPlan;
}

function endpointOf(context: StepContext): string {
  const endpoint = context.cluster.status.endpoint;
  if (endpoint === undefined) throw new StepError('infrastructure', 'The cluster has no API endpoint yet.', false);
  return endpoint;
}

function zonesFor(region: string, count: number): string[] {
  return ['a', 'b', 'c'].slice(0, count).map((suffix) => `${region}${suffix}`);
}

export async function planStep(services: KilnServices, input: unknown): Promise<StepResult<ProvisionPlan>> {
  return runStep(services, input, 'plan', async ({ cluster, input: { tenantId, clusterId } }) => {
    const spec = cluster.spec;
    assertOrderRules(spec);
    await ensureSshKey(services, cluster);
    const now = new Date().toISOString();
    await updateCluster(services, tenantId, clusterId, (current) => ({
      ...current,
      status: {
        ...current.status,
        phase: 'Provisioning',
        conditions: withCondition(current.status.conditions, { type: 'Ready', status: 'False', reason: 'Provisioning', message: 'Building infrastructure.' }, now),
      },
    }));
    const pools = spec.nodePools.map((pool) => ({ name: pool.name, size: pool.size, instanceType: pool.instanceType }));
    return {
      done: true,
      outputs: {
        availabilityZones: zonesFor(spec.region, 3),
        controlPlaneReplicas: spec.controlPlane.replicas,
        workerNodes: pools.reduce((sum, pool) => sum + pool.size, 0),
        pools,
      },
    };
  });
}

/** Pulumi up (or destroy) for the cluster; the container entry of the Infrastructure and Destroy states. */
export async function infrastructureStep(services: KilnServices, driver: InfrastructureDriver, input: unknown): Promise<StepResult<InfrastructureOutputs>> {
  return runStep(services, input, 'infrastructure', async (context) => {
    const { cluster, input: { tenantId, clusterId } } = context;
    const plan = planOf(context);
    const outputs = await driver.up({
      tenantId,
      clusterId,
      spec: cluster.spec,
      availabilityZones: plan.availabilityZones,
      userData: {
        controlPlane: renderUserData(clusterId, cluster.spec, 'control-plane'),
        pools: Object.fromEntries(cluster.spec.nodePools.map((pool) => [pool.name, renderUserData(clusterId, cluster.spec, 'worker', pool.name)])),
      },
    });
    const validated = InfrastructureOutputs.parse(outputs);
    await updateCluster(services, tenantId, clusterId, (current) => ({ ...current, status: { ...current.status, endpoint: validated.apiEndpoint } }));
    return { done: true, outputs: validated };
  });
}

const TOKEN_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const BOOTSTRAP_TOKEN_TTL_MS = 2 * 60 * 60 * 1000;

function tokenPart(length: number): string {
  const bytes = randomBytes(length);
  return Array.from(bytes, (byte) => TOKEN_ALPHABET[byte % TOKEN_ALPHABET.length]).join('');
}

/**
 * Issues the kubeadm bootstrap token machines join with. The token is sealed
 * with KMS before it is stored; only its public id leaves this step.
 */
export async function bootstrapStep(services: KilnServices, input: unknown): Promise<StepResult<Record<string, unknown>>> {
  return runStep(services, input, 'bootstrap', async (context) => {
    const { tenantId, clusterId } = context.input;
    const tokenId = tokenPart(6);
    const token = `${tokenId}.${tokenPart(16)}`;
    const sealed = await services.sealer.seal(Buffer.from(token), { tenantId, clusterId, purpose: 'bootstrap-token' });
    const expiresAt = new Date(Date.now() + BOOTSTRAP_TOKEN_TTL_MS).toISOString();
    await updateCluster(services, tenantId, clusterId, (current) => ({ ...current, sealed: { ...current.sealed, bootstrapToken: sealed } }));
    // Machines are already up, waiting for this: they read it with their instance role.
    const { kmsKeyArn } = context.outputsOf('infrastructure') as { kmsKeyArn?: string };
    for (const role of ['control-plane', 'worker'] as const) {
      await services.machineSecrets.publish(clusterId, role, 'join-token', token, kmsKeyArn);
    }
    return { done: true, outputs: { bootstrapTokenId: tokenId, bootstrapTokenExpiresAt: expiresAt } };
  });
}

interface WaitResult extends Record<string, unknown> {
  ready: boolean;
  retryAfterSeconds: number;
}

async function waitForNodes(
  services: KilnServices,
  input: unknown,
  step: 'control-plane' | 'workers',
): Promise<WaitResult> {
  const result = await runStep(
    services,
    input,
    step,
    async (context) => {
      const plan = planOf(context);
      const expected = step === 'control-plane' ? plan.controlPlaneReplicas : plan.workerNodes;
      const role = step === 'control-plane' ? 'control-plane' : 'worker';
      const nodes = (await listNodes(kubeConfigFor(context.cluster.name, endpointOf(context)))).filter((node) => node.role === role);
      const ready = nodes.filter((node) => node.ready).length;
      if (ready >= expected) return { done: true, outputs: { expected, ready, nodes: nodes.map((node) => node.name) } };

      const startedAt = Date.parse(context.operation.steps[step]?.startedAt ?? new Date().toISOString());
      const timeoutMs = context.cluster.spec.nodeHealth.nodeStartupTimeoutMinutes * 60_000;
      if (Date.now() - startedAt > timeoutMs) {
        throw new StepError(step, `Only ${ready} of ${expected} ${role} nodes became Ready within ${context.cluster.spec.nodeHealth.nodeStartupTimeoutMinutes} minutes.`, false);
      }
      return { done: false, progress: { expected, ready } };
    },
    { polling: true },
  );
  return { ready: result.done, retryAfterSeconds: services.config.KILN_POLL_SECONDS };
}

export function waitForControlPlaneStep(services: KilnServices, input: unknown): Promise<WaitResult> {
  return waitForNodes(services, input, 'control-plane');
}

export function waitForWorkersStep(services: KilnServices, input: unknown): Promise<WaitResult> {
  return waitForNodes(services, input, 'workers');
}

export async function addonsStep(services: KilnServices, input: unknown): Promise<StepResult<Record<string, unknown>>> {
  return runStep(services, input, 'addons', async (context) => {
    const objects = baselineObjects(context.input.clusterId, context.cluster.spec);
    await applyObjects(kubeConfigFor(context.cluster.name, endpointOf(context)), objects);
    return { done: true, outputs: { applied: objects.map(({ kind, metadata }) => [kind, metadata.namespace, metadata.name].filter(Boolean).join('/')) } };
  });
}

export async function verifyStep(services: KilnServices, input: unknown): Promise<StepResult<Record<string, unknown>>> {
  return runStep(services, input, 'verify', async (context) => {
    const config = kubeConfigFor(context.cluster.name, endpointOf(context));
    const plan = planOf(context);
    const nodes = await listNodes(config);
    const notReady = nodes.filter((node) => !node.ready).map((node) => node.name);
    const expected = plan.controlPlaneReplicas + plan.workerNodes;
    if (nodes.length < expected || notReady.length > 0) {
      throw new StepError('verify', `Expected ${expected} Ready nodes; ${nodes.length - notReady.length} are Ready${notReady.length > 0 ? ` (not Ready: ${notReady.join(', ')})` : ''}.`, true);
    }
    const missing: string[] = [];
    for (const object of baselineObjects(context.input.clusterId, context.cluster.spec)) {
      const live = await readObject(config, object);
      const wanted = object.metadata.labels ?? {};
      const labels = live.metadata?.labels ?? {};
      for (const [key, value] of Object.entries(wanted)) {
        if (labels[key] !== value) missing.push(`${object.kind}/${object.metadata.name} label ${key}`);
      }
    }
    if (missing.length > 0) throw new StepError('verify', `Hardening not in place: ${missing.join('; ')}.`, true);
    return { done: true, outputs: { readyNodes: nodes.length, checked: ['nodes-ready', 'pod-security-labels'] } };
  });
}

/** The last state of a successful provision: the operation succeeds and the cluster is Ready. */
export async function markReadyStep(services: KilnServices, rawInput: unknown): Promise<void> {
  const { tenantId, clusterId, operationId } = WorkflowInput.parse(rawInput);
  const now = new Date().toISOString();
  await updateOperation(services, tenantId, operationId, (operation) => ({ ...operation, state: 'succeeded', finishedAt: operation.finishedAt ?? now }));
  await updateCluster(services, tenantId, clusterId, (cluster) => {
    const { activeOperationId: _finished, reason: _reason, ...status } = cluster.status;
    return {
      ...cluster,
      status: {
        ...status,
        phase: 'Ready',
        conditions: withCondition(status.conditions, { type: 'Ready', status: 'True', reason: 'Provisioned', message: 'All nodes are Ready and hardening is verified.' }, now),
      },
    };
  });
  services.log.info('cluster ready', { tenantId, clusterId, operationId });
}
