import { z } from 'zod';
import { renderUserData } from '#bootstrap';
import { StepError, machineOsProblem, machineOsReleaseOf } from '#core';
import { INFRASTRUCTURE_STEP, type InfrastructureDriver, InfrastructureOutputs } from '#infra';
import { updateCluster } from '#services';
import type { StepServices } from './context.ts';
import { planOf } from './plan.ts';
import { type StepResult, runStep } from './step-runner.ts';

/**
 * The infrastructure runner's steps: Pulumi up and destroy, with the only
 * code that loads the Pulumi program. They run in the Fargate task, never in
 * a Lambda.
 */

/** Pulumi up for the cluster. */
export async function infrastructureStep(services: StepServices, driver: InfrastructureDriver, input: unknown): Promise<StepResult<InfrastructureOutputs>> {
  return runStep(services, input, 'infrastructure', async (context) => {
    const { cluster, input: { tenantId, clusterId } } = context;
    const plan = planOf(context);
    // Without them the cluster's load balancer would refuse every later step, the health poller and rotation.
    if (services.kilnEgressCidrs.length === 0) {
      throw new StepError('infrastructure', "Kiln's egress addresses are not configured (KILN_EGRESS_CIDRS), so the cluster's API would refuse Kiln's own calls: Kiln's operator must set them.", false);
    }
    // Kiln's own account: the runner may create the machines' roles only with the boundary (functions/permissions.ts).
    const inKilnAccount = cluster.spec.account === undefined;
    if (inKilnAccount && services.machineRoleBoundaryArn === undefined) {
      throw new StepError(INFRASTRUCTURE_STEP, "The machines' permissions boundary is not configured (KILN_MACHINE_ROLE_BOUNDARY_ARN), so their roles cannot be created: Kiln's operator must set it.", false);
    }
    // Public keys are no secret: the machines authorize the cluster's key from their user data.
    const authorizedKey = cluster.status.ssh?.publicKey;
    if (cluster.spec.encryption.atRest.provider === 'kms' && services.kmsPluginImage === undefined) {
      throw new StepError(INFRASTRUCTURE_STEP, 'The kms at-rest provider needs the aws-encryption-provider image, and Kiln is no longer configured with one (KILN_KMS_PLUGIN_IMAGE): its operator must set it.', false);
    }
    const userDataOptions = {
      ...(authorizedKey === undefined ? {} : { authorizedKey }),
      ...(services.kmsPluginImage === undefined ? {} : { kmsPluginImage: services.kmsPluginImage }),
    };
    // Every run boots new machines (a first build, a scale-up, a replacement): they get the OS supported today.
    const now = new Date();
    const os = machineOsReleaseOf(now);
    if (os === undefined) throw new StepError(INFRASTRUCTURE_STEP, machineOsProblem(now) ?? 'Kiln has no machine operating system in support today.', false);
    const outputs = await driver.up({
      tenantId,
      clusterId,
      spec: cluster.spec,
      availabilityZones: plan.availabilityZones,
      machineOs: os.version,
      kilnEgressCidrs: [...services.kilnEgressCidrs],
      ...(inKilnAccount ? { machineRoleBoundaryArn: services.machineRoleBoundaryArn } : {}),
      userData: {
        controlPlane: renderUserData(clusterId, cluster.spec, 'control-plane', undefined, userDataOptions),
        pools: Object.fromEntries(
          cluster.spec.nodePools.map((pool) => [pool.name, renderUserData(clusterId, cluster.spec, 'worker', pool.name, userDataOptions)]),
        ),
      },
    });
    const validated = InfrastructureOutputs.parse(outputs);
    await updateCluster(services, tenantId, clusterId, (current) => ({
      ...current,
      clusterKeyArn: validated.kmsKeyArn,
      apiHost: validated.apiHost,
      machineGroups: {
        controlPlane: validated.controlPlane.asgName,
        pools: Object.fromEntries(validated.nodePools.map((pool) => [pool.name, pool.asgName])),
      },
      status: { ...current.status, endpoint: validated.apiEndpoint },
    }));
    return { done: true, outputs: validated };
  });
}

/** Pulumi destroy of everything the cluster's stack holds; destroying nothing is fine. */
export async function destroyStep(services: StepServices, driver: InfrastructureDriver, input: unknown): Promise<StepResult<Record<string, unknown>>> {
  return runStep(services, input, 'destroy', async ({ cluster, input: { tenantId, clusterId } }) => {
    await driver.destroy({ tenantId, clusterId });
    await services.inCluster(cluster).machineSecrets.revoke(clusterId);
    return { done: true, outputs: { destroyedAt: new Date().toISOString() } };
  });
}

const ContainerEnvironment = z.object({
  KILN_STEP_ACTION: z.enum(['up', 'destroy']),
  KILN_STEP_INPUT: z.string().min(2),
});

/**
 * The infrastructure runner's entry: Step Functions starts it as a Fargate
 * task (ecs:runTask.sync) with the action and the execution state in its
 * environment, because a Pulumi run can outlast a Lambda.
 */
export async function runInfrastructureContainer(
  services: StepServices,
  driver: InfrastructureDriver,
  environment: Record<string, string | undefined>,
): Promise<void> {
  const { KILN_STEP_ACTION: action, KILN_STEP_INPUT: rawInput } = ContainerEnvironment.parse(environment);
  const input: unknown = JSON.parse(rawInput);
  if (action === 'up') await infrastructureStep(services, driver, input);
  else await destroyStep(services, driver, input);
}
