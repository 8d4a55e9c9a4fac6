import { StepError } from '#core';
import type { InfrastructureOutputs } from './outputs.ts';
import type { ClusterProgramInput } from './program-input.ts';

/** The workflow step name infrastructure failures are recorded under. */
export const INFRASTRUCTURE_STEP = 'infrastructure';

export interface ClusterRef {
  tenantId: string;
  clusterId: string;
}

/**
 * Runs the cluster program against some cloud: AWS through the Automation API
 * in production, Pulumi mocks in the sandbox. Both are idempotent: `up` on an
 * existing cluster converges it, `destroy` of a missing one succeeds.
 */
export interface InfrastructureDriver {
  up(input: ClusterProgramInput): Promise<InfrastructureOutputs>;
  destroy(ref: ClusterRef): Promise<void>;
}

const STACK_NAME = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** One stack per cluster; the tenant is part of the name so state files never mix tenants. */
export function stackName(ref: ClusterRef): string {
  const name = `${ref.tenantId}.${ref.clusterId}`;
  if (!STACK_NAME.test(name) || name.length > 100) {
    throw new StepError(INFRASTRUCTURE_STEP, 'tenant and cluster ids must be letters, digits, "_" or "-", together at most 99 characters', false);
  }
  return name;
}
