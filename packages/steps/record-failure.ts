import { WorkflowInput } from '#core';
import { recordFailureStep } from '#services';
import type { StepServices } from './context.ts';
import { withdrawJoinMaterial } from './join-material.ts';

/**
 * The Catch target of the provision, update, rotation and deprovision workflows: the failure is recorded, then the
 * join material the workflow published goes, as no machine of this workflow joins any more. The cluster may be out of
 * reach: its bootstrap tokens are left to expire.
 */
export async function recordWorkflowFailureStep(services: StepServices, rawInput: unknown): Promise<void> {
  await recordFailureStep(services, rawInput);
  await withdrawJoinMaterial(services, WorkflowInput.parse(rawInput), false);
}
