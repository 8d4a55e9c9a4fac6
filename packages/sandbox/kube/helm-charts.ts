import { KubeConfig, KubernetesObjectApi, PatchStrategy } from '@kubernetes/client-node';
import { CHART_READINESS_ANNOTATION, type ChartReadiness, type Manifest } from '#addons';
import type { SandboxCluster } from './cluster.ts';

/** The CRDs the real charts install, by name: what the stand-in chart runner serves. */
const CHART_CRDS: Record<string, { group: string; version: string; kind: string; plural: string; scope: 'Cluster' | 'Namespaced' }> = {
  'clusterissuers.cert-manager.io': { group: 'cert-manager.io', version: 'v1', kind: 'ClusterIssuer', plural: 'clusterissuers', scope: 'Cluster' },
  'certificates.cert-manager.io': { group: 'cert-manager.io', version: 'v1', kind: 'Certificate', plural: 'certificates', scope: 'Namespaced' },
  'clusterpolicies.kyverno.io': { group: 'kyverno.io', version: 'v1', kind: 'ClusterPolicy', plural: 'clusterpolicies', scope: 'Cluster' },
  'tracingpolicies.cilium.io': { group: 'cilium.io', version: 'v1alpha1', kind: 'TracingPolicy', plural: 'tracingpolicies', scope: 'Cluster' },
};

/**
 * Workloads the real charts run on the host network, which is what lets them start before any CNI is configured:
 * Cilium's agent DaemonSet and its operator (cilium/charts@009b5e95 cilium-1.20.0.tgz templates/cilium-agent/
 * daemonset.yaml and templates/cilium-operator/deployment.yaml: `hostNetwork: true`; values.yaml tolerations
 * `- operator: Exists` for both). Every other chart's pods need the pod network.
 */
const HOST_NETWORK_WORKLOADS = new Set(['cilium/cilium', 'cilium/cilium-operator']);

function chartRunnerObjects(chart: string, readiness: ChartReadiness): Manifest[] {
  const crds = readiness.crds.map((name): Manifest => {
    const crd = CHART_CRDS[name];
    if (crd === undefined) throw new Error(`no stand-in for ${name}`);
    return {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name },
      spec: {
        group: crd.group,
        scope: crd.scope,
        names: { kind: crd.kind, plural: crd.plural, singular: crd.kind.toLowerCase(), listKind: `${crd.kind}List` },
        versions: [{ name: crd.version, served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
      },
    };
  });
  const workloads = readiness.workloads.map((workload): Manifest => {
    const labels = { app: workload.name };
    const hostNetwork = HOST_NETWORK_WORKLOADS.has(`${chart}/${workload.name}`);
    const template = {
      metadata: { labels },
      spec: { ...(hostNetwork ? { hostNetwork } : {}), tolerations: [{ operator: 'Exists' }], containers: [{ name: workload.name, image: `example/${workload.name}:1.0.0` }] },
    };
    return {
      apiVersion: 'apps/v1',
      kind: workload.kind,
      metadata: { name: workload.name, namespace: workload.namespace },
      spec: { selector: { matchLabels: labels }, template, ...(workload.kind === 'Deployment' ? { replicas: 1 } : {}) },
    };
  });
  return [...crds, ...workloads];
}

/**
 * Stands in for helm-controller, which the sandbox does not run: when a
 * HelmChart appears, it serves the chart's CRDs and workloads, as the install
 * Job would. Field manager `helm`, as a real release would have.
 */
export function startChartRunner(cluster: SandboxCluster): () => Promise<void> {
  // Charts appear only once kubeadm init ran, so admin.conf exists by the first one.
  let config: KubeConfig | undefined;
  const installed = new Set<string>();
  const state = { running: true, changed: true };
  let wake: (() => void) | undefined;
  // helm-controller acts on its informer's events rather than polling; listing every chart of every cluster each 10 ms
  // (the old loop) took more of the test process's CPU than anything Kiln did.
  const unsubscribe = cluster.onChange({ kind: 'HelmChart' }, () => {
    state.changed = true;
    wake?.();
  });
  const loop = (async () => {
    while (state.running) {
      if (!state.changed) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
      state.changed = false;
      for (const chart of cluster.objects({ kind: 'HelmChart' })) {
        const metadata = chart.metadata as { name: string; annotations?: Record<string, string> };
        if (installed.has(metadata.name)) continue;
        installed.add(metadata.name);
        const readiness = JSON.parse(metadata.annotations?.[CHART_READINESS_ANNOTATION] ?? '{"crds":[],"workloads":[]}') as ChartReadiness;
        const objects = chartRunnerObjects((chart.spec as { chart?: string } | undefined)?.chart ?? metadata.name, readiness);
        if (config === undefined) {
          config = new KubeConfig();
          config.loadFromString(cluster.kubeconfig());
        }
        for (const object of objects) await KubernetesObjectApi.makeApiClient(config).patch(object, undefined, undefined, 'helm', true, PatchStrategy.ServerSideApply);
      }
    }
  })();
  return async () => {
    state.running = false;
    unsubscribe();
    wake?.();
    await loop;
  };
}
