import { listNodes } from '#addons';
import { StepError } from '#core';
import { clusterApi } from './cluster-api.ts';
import type { StepServices } from './context.ts';
import { planOf } from './plan.ts';
import { pastNodeStartupTimeout, runStep } from './step-runner.ts';

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

      const minutes = context.cluster.spec.nodeHealth.nodeStartupTimeoutMinutes;
      if (pastNodeStartupTimeout(context, step)) {
        // Machines that never registered did not join; registered nodes that stay NotReady have a kubelet or network problem.
        const registered = nodes.length;
        throw new StepError(
          step,
          registered < expected
            ? `Only ${registered} of ${expected} ${role} machines joined the cluster within ${minutes} minutes (${ready} Ready).`
            : `All ${expected} ${role} nodes joined, but only ${ready} became Ready within ${minutes} minutes.`,
          false,
        );
      }
      return { done: false, progress: { expected, registered: nodes.length, ready } };
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
