import { type NodeView, daemonRunsOn, nodeView } from './controllers.ts';
import type { JsonObject } from './json.ts';

/**
 * The CNI agents the sandbox knows, as their charts deploy them: a daemon pod that, once running on a node, writes
 * the CNI configuration the kubelet waits for. Cilium's agent DaemonSet (cilium/cilium@v1.20.2
 * install/kubernetes/cilium/templates/cilium-agent/daemonset.yaml, named `cilium` in the release namespace) runs on
 * the host network; its `install-cni-binaries` init container copies the plugin and the agent writes
 * /etc/cni/net.d/05-cilium.conflist once it is up (values.yaml `cni.confFileMountPath`, daemon/cmd/cni.go).
 */
const CNI_AGENTS: readonly { namespace: string; name: string }[] = [{ namespace: 'kube-system', name: 'cilium' }];

export interface CniHost {
  /** Nodes whose kubelet runs on a machine without a CNI configuration. */
  awaitingCni(): string[];
  node(name: string): JsonObject | undefined;
  daemonSet(namespace: string, name: string): JsonObject | undefined;
  installCni(name: string): void;
}

/**
 * Plays the CNI agent's pod on each node: wherever a known agent's daemon pod runs (placed by its tolerations and
 * started by the kubelet, which it can be before any network because it uses the host's), its configuration appears
 * and the kubelet turns Ready. Nothing else makes a node Ready: a cluster with no CNI keeps every node NotReady.
 * Returns the function to call whenever nodes or DaemonSets change.
 */
export function cniAgents(host: CniHost): () => void {
  let pending = false;
  const pass = (): void => {
    pending = false;
    const agents = CNI_AGENTS.flatMap(({ namespace, name }): JsonObject[] => {
      const agent = host.daemonSet(namespace, name);
      return agent === undefined ? [] : [agent];
    });
    if (agents.length === 0) return;
    for (const name of host.awaitingCni()) {
      const node = host.node(name);
      if (node === undefined) continue;
      const view: NodeView = nodeView(node);
      if (agents.some((agent) => daemonRunsOn(agent, view))) host.installCni(name);
    }
  };
  return () => {
    if (pending) return;
    pending = true;
    // After the write that triggered it has been told to every watcher, as the agent starts after the change it sees.
    queueMicrotask(pass);
  };
}
