import { type ClusterSpec, StepError, assertOrderRules } from '#core';
import { updateCluster, withCondition } from '#services';
import type { StepServices } from './context.ts';
import { ensureSshKey } from './ssh-key.ts';
import { type StepContext, type StepResult, runStep } from './step-runner.ts';

/** What the plan step decides, and every later step reads. */
export interface ProvisionPlan extends Record<string, unknown> {
  availabilityZones: string[];
  controlPlaneReplicas: number;
  workerNodes: number;
  pools: { name: string; size: number; instanceType: string }[];
}

/** The plan an order makes: the zones, and the machines of the control plane and each pool. */
export function provisionPlan(spec: ClusterSpec): ProvisionPlan {
  const pools = spec.nodePools.map((pool) => ({ name: pool.name, size: pool.size, instanceType: pool.instanceType }));
  return {
    availabilityZones: zonesFor(spec.region, 3),
    controlPlaneReplicas: spec.controlPlane.replicas,
    workerNodes: pools.reduce((sum, pool) => sum + pool.size, 0),
    pools,
  };
}

/** The plan the provisioning recorded; an update (which has no plan step) plans from the order as the provisioning did. */
export function planOf(context: StepContext): ProvisionPlan {
  const plan = context.outputsOf('plan') as Partial<ProvisionPlan>;
  if (plan.availabilityZones !== undefined && plan.pools !== undefined) return plan as ProvisionPlan;
  if (context.operation.type === 'update') return provisionPlan(context.cluster.spec);
  throw new StepError('plan', 'The plan step has not recorded its outputs.', false);
}

function zonesFor(region: string, count: number): string[] {
  return ['a', 'b', 'c'].slice(0, count).map((suffix) => `${region}${suffix}`);
}

export async function planStep(services: StepServices, input: unknown): Promise<StepResult<ProvisionPlan>> {
  return runStep(services, input, 'plan', async ({ cluster, input: { tenantId, clusterId } }) => {
    const spec = cluster.spec;
    assertOrderRules(spec, { stored: true });
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
    return { done: true, outputs: provisionPlan(spec) };
  });
}
