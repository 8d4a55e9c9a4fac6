import type { KubeConfig } from '@kubernetes/client-node';
import { installAddons, listNodes, networkAddons } from '#addons';
import { StepError } from '#core';
import { renderAddonsFor } from './addons.ts';
import { clusterApi } from './cluster-api.ts';
import type { StepServices } from './context.ts';
import { pastNodeStartupTimeout, runStep, toStepError } from './step-runner.ts';

interface NetworkResult extends Record<string, unknown> {
  ready: boolean;
  retryAfterSeconds: number;
}

/** Within the Task's 900 s timeout, leaving room to record the result. */
const NETWORK_DEADLINE_MS = 10 * 60_000;

/**
 * Installs the pod network as soon as the first API server answers, before any node can be Ready: a kubelet
 * reports NotReady (and its node carries the not-ready taint) until a CNI configuration is on its machine, and
 * Cilium's agent is what writes it. Only what the CNI needs goes in now (the chart controller that runs Cilium's
 * chart on the host network, and the chart itself); every other add-on needs a pod network and waits for the
 * Addons step. Until the API server answers, each poll returns not ready; past the node startup timeout the step fails.
 */
export async function networkStep(services: StepServices, input: unknown): Promise<NetworkResult> {
  const result = await runStep(
    services,
    input,
    'network',
    async (context) => {
      let config: KubeConfig;
      let controlPlaneNodes: number;
      try {
        config = await clusterApi(services, context.cluster, 'network');
        controlPlaneNodes = (await listNodes(config)).filter((node) => node.role === 'control-plane').length;
      } catch (error) {
        if (!toStepError('network', error).retriable) throw error;
        if (pastNodeStartupTimeout(context, 'network')) {
          throw new StepError('network', `The cluster's API server did not answer within ${context.cluster.spec.nodeHealth.nodeStartupTimeoutMinutes} minutes of its machines starting.`, false);
        }
        return { done: false, progress: { apiServer: 'not answering yet' } };
      }
      // Cilium's chart installs from a control plane node's host network: one must have registered first.
      if (controlPlaneNodes === 0) {
        if (pastNodeStartupTimeout(context, 'network')) {
          throw new StepError('network', `No control plane node registered within ${context.cluster.spec.nodeHealth.nodeStartupTimeoutMinutes} minutes of its machines starting.`, false);
        }
        return { done: false, progress: { apiServer: 'answering', controlPlaneNodes } };
      }
      const addons = networkAddons(await renderAddonsFor(services, context));
      // The charts' workloads become available only as nodes join and turn Ready, which the next steps wait for.
      const { applied } = await installAddons(config, addons, { deadlineMs: NETWORK_DEADLINE_MS, waitForCharts: false });
      return { done: true, outputs: { applied } };
    },
    { polling: true },
  );
  return { ready: result.done, retryAfterSeconds: services.pollSeconds };
}
