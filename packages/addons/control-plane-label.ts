import { CoreV1Api, type KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { Manifest } from './kube.ts';

const CONTROL_PLANE_LABEL = 'node-role.kubernetes.io/control-plane';

/** A HelmChart whose install Job runs on the host network of a control plane node, before any pod network. */
export function isBootstrapChart(chart: Manifest): boolean {
  return (chart.spec as { bootstrap?: unknown } | undefined)?.bootstrap === true;
}

/**
 * helm-controller places a bootstrap chart's install Job with the node selector
 * `node-role.kubernetes.io/control-plane: "true"`, K3s's value (k3s-io/helm-controller@v0.17.7
 * pkg/controllers/chart/chart.go job()), while kubeadm labels control plane nodes with an empty value
 * (kubernetes/kubernetes@v1.35.9 cmd/kubeadm/app/phases/markcontrolplane/markcontrolplane.go), so no node would
 * ever run it. Kiln gives every control plane node registered so far the value the Job selects; the key stays, so
 * whatever selects control plane nodes by the label's presence (kubeadm, Kiln's own workloads) still finds them.
 * Returns the nodes it relabelled.
 */
export async function markControlPlaneForBootstrapCharts(config: KubeConfig): Promise<string[]> {
  const core = config.makeApiClient(CoreV1Api);
  const nodes = await core.listNode({ labelSelector: CONTROL_PLANE_LABEL });
  const relabelled: string[] = [];
  for (const node of nodes.items) {
    const name = node.metadata?.name;
    if (name === undefined || node.metadata?.labels?.[CONTROL_PLANE_LABEL] === 'true') continue;
    await core.patchNode({ name, body: { metadata: { labels: { [CONTROL_PLANE_LABEL]: 'true' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    relabelled.push(name);
  }
  return relabelled;
}
