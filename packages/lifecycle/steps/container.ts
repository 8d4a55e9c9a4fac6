import { z } from 'zod';
import type { InfrastructureDriver } from '#infra';
import type { KilnServices } from '../services.ts';
import { destroyStep } from './deprovision.ts';
import { infrastructureStep } from './provision.ts';

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
  services: KilnServices,
  driver: InfrastructureDriver,
  environment: Record<string, string | undefined>,
): Promise<void> {
  const { KILN_STEP_ACTION: action, KILN_STEP_INPUT: rawInput } = ContainerEnvironment.parse(environment);
  const input: unknown = JSON.parse(rawInput);
  if (action === 'up') await infrastructureStep(services, driver, input);
  else await destroyStep(services, driver, input);
}
