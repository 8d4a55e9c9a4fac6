import { listNodes } from '#addons';
import { StepError } from '#core';
import { clusterApi } from './cluster-api.ts';
import type { StepServices } from './context.ts';
import { planOf } from './plan.ts';
import { runStep } from './step-runner.ts';

interface WaitResult extends Record<string, unknown> {
  ready: boolean;
  retryAfterSeconds: number;
}

async function waitForNodes(
  services: StepServices,
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
      const nodes = (await listNodes(await clusterApi(services, context.cluster, step))).filter((node) => node.role === role);
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
  return { ready: result.done, retryAfterSeconds: services.pollSeconds };
}

export function waitForControlPlaneStep(services: StepServices, input: unknown): Promise<WaitResult> {
  return waitForNodes(services, input, 'control-plane');
}

export function waitForWorkersStep(services: StepServices, input: unknown): Promise<WaitResult> {
  return waitForNodes(services, input, 'workers');
}
